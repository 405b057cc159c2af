"""`bench_train.py --precision`: tokens/s of fp32 against bf16 autocast, full against supervised-only
logits, and packing off / on, on the CPU (docs/train.md, "Precision, logits and packing on a CPU")."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
from _train_mfu import synthetic_feats  # noqa: E402

# ------------------------------------------------------------------------------- CPU precision

PRECISION_MODELS = {
    "tiny": ROOT / "configs" / "tiny" / "model.yaml",
    "embedded": ROOT / "configs" / "embedded" / "model.yaml",
}


class _FullLogits(torch.nn.Module):
    """The step as it was: logits at every position, the supervised ones picked afterwards."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, logits_at: torch.Tensor, **inputs):
        out = self.model(**inputs)
        out["logits"] = out.logits[logits_at]
        return out


def _precision_model(name: str):
    """(model, processor) with the vision tower and the LM frozen, the connector trained (input gradients
    flow through the LM, as in a connector stage); None when a packaged part's wheel is missing."""
    from sparrow.model import Processor, VideoLLM, VideoLLMConfig
    from sparrow.model.feature_cache import FeatureCache
    from sparrow.model.packaged import prepare_packaged
    from sparrow.model.packaged_specs import PackagedPartError

    cfg = VideoLLMConfig.from_yaml(PRECISION_MODELS[name])
    try:
        prepare_packaged(cfg)
        proc = Processor(cfg)
        torch.manual_seed(0)
        model = VideoLLM(cfg, tokenizer=proc.tokenizer)
    except (PackagedPartError, ImportError, OSError) as e:
        print(f"{name}: skipped ({str(e).splitlines()[0]})")
        return None
    model.vision.requires_grad_(False)
    model.lm.requires_grad_(False)
    model.train()
    model.feature_cache = FeatureCache()  # the frozen tower runs once per frame, as in training
    return model, proc


# (label, packing, bf16 autocast, supervised-only logits, packed_attention); None: what auto picks
PRECISION_CONFIGS = [
    ("fp32, full logits", False, False, False, "auto"),
    ("fp32, supervised logits", False, False, True, "auto"),
    ("bf16, full logits", False, True, False, "auto"),
    ("bf16, supervised logits", False, True, True, "auto"),
    ("packed, block mask", True, None, True, "mask"),
    ("packed, per sample", True, None, True, "per_sample"),
]


def bench_precision(args: argparse.Namespace, name: str) -> list[dict]:
    """tokens/s of the trainer's step on one model: fp32 / bf16 autocast x full / supervised-only logits
    (unpacked), then packed rows through the block mask or per sample (at the precision auto picks).
    Samples: ``--frames`` frames + ~``--text-tokens`` text tokens, ``--answer-tokens`` supervised.
    The configurations run in turn, one step each per round, so load changes on a shared machine hit
    them alike; each figure is the median over ``--steps`` rounds."""
    from sparrow.model import collate
    from sparrow.model.geometry import frame_size, tokens_per_group
    from sparrow.train import distributed as D
    from sparrow.train.step import StepSetup, train_step
    from sparrow.train.trainer import resolve_precision

    built = _precision_model(name)
    if built is None:
        return []
    model, proc = built
    auto = resolve_precision("auto", torch.device("cpu"), lm_hidden=int(model.lm.config.hidden_size))
    print(f"{name}: precision auto -> {auto['autocast']} ({auto['reason']})", flush=True)
    n_tok, size = tokens_per_group(model.cfg), frame_size(model.cfg)
    gen = torch.Generator().manual_seed(0)
    feats = []
    for _ in range(2 * args.batch):
        half = args.text_tokens // 2
        text = args.text_tokens + int(torch.randint(-half, half + 1, (1,), generator=gen))
        f = synthetic_feats(proc, n_tok, args.frames, text, size, gen)
        f["labels"][: -args.answer_tokens] = -100
        feats.append(f)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": params, "part": "connector"}], lr=1e-6)
    runs = []
    for label, pack, bf16, supervised_only, mode in PRECISION_CONFIGS:
        bf16 = auto["autocast"] == "bf16" if bf16 is None else bf16
        chunks = [feats[: args.batch], feats[args.batch :]]
        batches = [collate(c, proc.pad_token_id, pack=pack, max_length=args.row_length) for c in chunks]
        fwd = model if supervised_only else _FullLogits(model)
        setup = StepSetup(model, fwd, _sum_ce, opt, 1, 1.0, D.DistInfo(), use_bf16=bf16)
        runs.append(
            {"label": label, "setup": setup, "batches": batches, "mode": mode, "times": [], "tokens": []}
        )

    def step(run: dict, k: int) -> dict:
        model.packed_attention = run["mode"]
        batch = run["batches"][k % 2]
        return train_step(
            run["setup"], iter([{"batch": dict(batch), "samples": args.batch, "errors": []}]), "b"
        )

    for run in runs:
        for k in range(2):
            step(run, k)  # warm-up: fills the feature cache for this precision, both batches
        print(f"  warmed up: {run['label']}", flush=True)
    for k in range(args.steps):
        for run in runs:
            row = step(run, k)
            run["times"].append(row["step_time_s"])
            run["tokens"].append(row["tokens"])
            rate = row["tokens"] / row["step_time_s"]
            print(f"  round {k + 1}: {run['label']:26s} {rate:>9,.0f} tok/s", flush=True)
    results = []
    for run in runs:
        t = statistics.median(run["times"])
        results.append(
            {
                "model": name,
                "config": run["label"],
                "tokens_per_s": statistics.median(run["tokens"]) / t,
                "samples_per_s": args.batch / t,
                "step_s": t,
            }
        )
        r = results[-1]
        print(
            f"{name:9s} {r['config']:26s} {r['tokens_per_s']:>9,.0f} tok/s {r['samples_per_s']:>7.2f} samples/s",
            flush=True,
        )
    return results


def _sum_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.float(), target, reduction="sum")


def run_precision(args: argparse.Namespace) -> None:
    from sparrow.train.trainer import auto_threads, cpu_bf16_flags

    torch.set_num_threads(args.threads or auto_threads(0))
    flags = cpu_bf16_flags() or ["none"]
    print(
        f"CPU bf16 features: {', '.join(flags)}; torch threads {torch.get_num_threads()}; "
        f"batch {args.batch} x ({args.frames} frames + ~{args.text_tokens} text tokens, "
        f"{args.answer_tokens} supervised)",
        flush=True,
    )
    results = []
    for name in args.precision_models.split(","):
        results += bench_precision(args, name)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
