"""Training-step speed of the HF-native families through Sparrow against a plain transformers loop.

For each tiny family (``sparrow.adapters.tiny``: random weights from config dicts, Sparrow's tiny
tokenizer) one batch of video samples is made by Sparrow's processor. Two copies of the same model then
train on that batch: Sparrow's trainer step (``sparrow.train.step.train_step``: logits only at supervised
positions, summed token loss / supervised tokens, clipping, AdamW) and a plain transformers loop
(``model(**inputs, labels=labels).loss.backward()``, the same clipping and AdamW). The first step's
losses must agree (same numbers); the table reports samples/s of each (median of the timed steps) and
the ratio.

    .venv/bin/python benchmarks/bench_adapters.py [--batch 4] [--steps 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sparrow.adapters import HFModelSpec, build  # noqa: E402
from sparrow.adapters.tiny import tiny_model  # noqa: E402
from sparrow.model import collate  # noqa: E402
from sparrow.records import Sample  # noqa: E402
from sparrow.train.distributed import DistInfo  # noqa: E402
from sparrow.train.step import StepSetup, train_step  # noqa: E402

FAMILIES = ("qwen2_vl", "llava_onevision", "idefics3")


def native_inputs(model, batch: dict) -> dict:
    """The batch in the transformers model's own input names."""
    ids, pix, lay = batch["input_ids"], batch["pixel_values"], batch["group_sizes"]
    out = {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": batch["labels"]}
    if model.family == "qwen2_vl":
        types = (ids == model.hf.config.video_token_id).int() * 2
        return {
            **out,
            "pixel_values_videos": pix,
            "video_grid_thw": lay.view(-1, 4)[:, :3],
            "mm_token_type_ids": types,
        }
    if model.family == "llava_onevision":
        return {**out, "pixel_values_videos": pix.view(len(lay), int(lay[0]), *pix.shape[1:])}
    return {**out, "pixel_values": pix.view(len(lay), int(lay[0]), *pix.shape[1:])}


def sparrow_step(model, batch: dict, steps: int) -> tuple[float, list[float]]:
    opt = torch.optim.AdamW([{"params": list(model.parameters()), "part": "all"}], lr=1e-4)
    setup = StepSetup(
        model,
        model,
        lambda z, y: torch.nn.functional.cross_entropy(z, y, reduction="sum"),
        opt,
        1,
        1.0,
        DistInfo(),
    )
    times, first = [], None
    for _ in range(steps):
        item = {"batch": dict(batch), "samples": len(batch["group_sizes"]), "errors": []}
        t = time.perf_counter()
        row = train_step(setup, iter([item]), "bench")
        times.append(time.perf_counter() - t)
        first = row["loss"] if first is None else first
    return first, times


def plain_step(model, batch: dict, steps: int) -> tuple[float, list[float]]:
    hf = model.hf
    opt = torch.optim.AdamW(hf.parameters(), lr=1e-4)
    inputs = native_inputs(model, batch)
    times, first = [], None
    for _ in range(steps):
        t = time.perf_counter()
        loss = hf(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
        first = float(loss.detach()) if first is None else first
    return first, times


def batch_for(family: str, root: Path, n: int):
    torch.manual_seed(0)
    model, proc = build(HFModelSpec.from_dict(tiny_model(family)))
    rows = [json.loads(line) for line in (root / "videos.jsonl").read_text().splitlines()]
    feats = [proc(Sample.from_dict(rows[i % len(rows)]), root) for i in range(n)]
    return model, collate(feats, proc.pad_token_id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from train_data import make_data

    with tempfile.TemporaryDirectory() as tmp:
        root = make_data(Path(tmp), n_text=1, n_frames=1, videos=2)
        print(
            f"{'family':16} {'loss sparrow':>13} {'loss plain':>11} {'sparrow s/s':>12} {'plain s/s':>10} {'ratio':>6}"
        )
        for family in FAMILIES:
            model, batch = batch_for(family, root, args.batch)
            model.train()
            plain_model = copy.deepcopy(model)
            ls, ts = sparrow_step(model, batch, args.steps)
            lp, tp = plain_step(plain_model, batch, args.steps)
            s = args.batch / statistics.median(ts[1:] or ts)
            p = args.batch / statistics.median(tp[1:] or tp)
            print(f"{family:16} {ls:13.6f} {lp:11.6f} {s:12.1f} {p:10.1f} {s / p:6.2f}")


if __name__ == "__main__":
    main()
