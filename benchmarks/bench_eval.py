"""Speed of ``sparrow eval``'s batched letter scoring against scoring one question at a time.

The baseline is what a user would otherwise write: for each question, ``score_options`` with the option
letters (one prompt pass per question, KV cache reused across options). Sparrow's ``evaluate_rows``
processes a batch of questions in one left-padded forward pass when every letter is a single token.
Both score the same questions with the same tiny checkpoint and must agree; the table gives questions/s
and the ratio, per condition (video decoding is included in both).

    .venv/bin/python benchmarks/bench_eval.py [--questions 48] [--batch-size 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from media import write_video  # noqa: E402

from sparrow.eval.bench import read_bench  # noqa: E402
from sparrow.eval.conditions import build_sample, condition_sampling  # noqa: E402
from sparrow.eval.config import EvalConfig  # noqa: E402
from sparrow.eval.evaluate import evaluate_rows  # noqa: E402
from sparrow.eval.scoring import letter_candidates  # noqa: E402
from sparrow.model import Processor, VideoLLM, VideoLLMConfig, load_pretrained  # noqa: E402
from sparrow.model.inference import score_options  # noqa: E402


def make_bench(d: Path, n: int) -> Path:
    (d / "videos").mkdir(parents=True)
    for v in range(4):
        write_video(d / "videos" / f"v{v}.mp4", num_frames=40 + 20 * v, fps=10, width=64, height=64)
    rng = np.random.default_rng(0)
    with (d / "bench.jsonl").open("w") as f:
        for i in range(n):
            k = int(rng.integers(2, 6))
            row = {
                "id": f"q{i}",
                "video": f"videos/v{i % 4}.mp4",
                "question": f"Question {i}: what happens {'then ' * int(rng.integers(0, 6))}in the video?",
                "options": [f"option {j} of question {i}" for j in range(k)],
                "answer": "ABCDE"[int(rng.integers(0, k))],
            }
            f.write(json.dumps(row) + "\n")
    return d / "bench.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        bench = make_bench(d, args.questions)
        cfg = VideoLLMConfig.from_yaml(ROOT / "configs" / "tiny" / "model.yaml")
        torch.manual_seed(0)
        proc = Processor(cfg)
        VideoLLM(cfg, tokenizer=proc.tokenizer).save_pretrained(d / "ckpt", processor=proc)
        model, processor = load_pretrained(d / "ckpt")
        rows, _ = read_bench(bench)
        print(f"{len(rows)} questions, tiny checkpoint, {args.threads} thread(s), batch {args.batch_size}")
        print(f"{'condition':<9} {'one-by-one q/s':>15} {'batched q/s':>12} {'ratio':>7} {'max |diff|':>11}")
        for condition in ("text", "frame", "video"):
            sampling = condition_sampling(processor.sampling, condition)
            t0 = time.perf_counter()
            ref = []
            for row in rows:
                sample = build_sample(row, condition)
                ref.append(
                    score_options(
                        model,
                        processor,
                        sample,
                        letter_candidates(processor.tokenizer, row.options),
                        d,
                        sampling,
                    )
                )
            t_ref = time.perf_counter() - t0
            t0 = time.perf_counter()
            cfg_eval = EvalConfig(condition=condition, batch_size=args.batch_size)
            got = [p for batch in evaluate_rows(model, processor, rows, d, cfg_eval) for p in batch]
            t_new = time.perf_counter() - t0
            diff = max(
                abs(a - b)
                for r, p in zip(ref, got, strict=True)
                for a, b in zip(r, p["scores"].values(), strict=True)
            )
            n = len(rows)
            print(
                f"{condition:<9} {n / t_ref:>15.1f} {n / t_new:>12.1f} {t_ref / t_new:>6.2f}x {diff:>11.1e}"
            )


if __name__ == "__main__":
    main()
