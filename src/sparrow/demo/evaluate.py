"""Steps 4 and 5: every checkpoint scored under every condition, and the benchmark curated from that."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparrow.demo.config import REFERENCE, DemoConfig
from sparrow.demo.runs import checkpoints
from sparrow.eval.conditions import CONDITIONS
from sparrow.jobs.hooks import StepHooks

BUCKETS = (30.0, 120.0)  # duration buckets (seconds) of the metrics and the curation
CLIP_CACHE_SIZE = 4096


def evaluate_all(cfg: DemoConfig, world: Path, cb: StepHooks) -> dict[str, dict[str, dict[str, Any]]]:
    """``metrics[model][condition]`` for every checkpoint under every condition (video, frame, text, swap)
    on the world's test benchmark, each written to ``OUT/eval/<model>/<condition>/``. Swap costs about
    what video costs minus the vision tower (its clips are the video condition's, so the clip and
    feature caches answer them)."""
    from sparrow.eval.config import EvalOptions
    from sparrow.eval.runner import evaluate_checkpoint
    from sparrow.model.media import ClipCache

    bench = world / "bench_test.jsonl"
    cache = ClipCache(CLIP_CACHE_SIZE)  # every checkpoint samples the same frames: decode each clip once
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    for name, ckpt in checkpoints(cfg).items():
        cb.start(f"eval {name}")
        options = EvalOptions(
            conditions=CONDITIONS,
            method=cfg.eval_method,
            name=name,
            threads=cfg.threads or 1,
            batch_size=cfg.eval_batch_size,
            bootstrap=cfg.bootstrap,
            seed=cfg.seed,
            buckets=BUCKETS,
        )
        results = evaluate_checkpoint(
            ckpt,
            bench,
            cfg.out / "eval" / name,
            options,
            on_progress=lambda cond, done, total, name=name: cb.advance(f"eval {name} {cond}", done, total),
            clip_cache=cache,
        )
        metrics[name] = {r.condition: r.metrics for r in results}
    return metrics


def curate_all(cfg: DemoConfig, names: list[str], cb: StepHooks) -> dict[str, Any]:
    """ApolloBench curation from the trained checkpoints' results into ``OUT/curate``."""
    from sparrow.eval.curate import CurateConfig, curate_results

    cb.start("curate")
    # The untrained reference is no model a benchmark would be curated with: its "right" answers are
    # scoring biases, which would make the text/frame-answerable vote noisier.
    # Swap is a control, not a way to answer: ApolloBench votes with the text and centre-frame conditions.
    conditions = [c for c in CONDITIONS if c != "swap"]
    specs = [str(cfg.out / "eval" / n / c) for n in names if n != REFERENCE for c in conditions]
    done = curate_results(specs, cfg.out / "curate", CurateConfig(top_k=cfg.curate_top_k, buckets=BUCKETS))
    return done.document
