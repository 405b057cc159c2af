"""The whole evaluation job as a library call: what `sparrow eval` and the demo run.

``evaluate_checkpoint`` loads a checkpoint once and evaluates it under one or more conditions, each into
its own folder (predictions.jsonl, metrics.json, run.json, errors.jsonl), resumably. The curation job
is ``sparrow.eval.curate.curate_results``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sparrow.adapters import load_pretrained
from sparrow.eval.bench import BenchRow, read_bench
from sparrow.eval.conditions import PAIRED_KEYS, condition_sampling, parse_sampling_overrides, swap_videos
from sparrow.eval.config import EvalConfig, EvalOptions
from sparrow.eval.errors import EvalError
from sparrow.eval.evaluate import run_eval
from sparrow.eval.metrics import compute_metrics, paired_block
from sparrow.io import LineError, atomic_write_text, write_jsonl
from sparrow.jobs import STATE_DIR, prepare_state
from sparrow.model import ConfigError
from sparrow.model.feature_cache import FeatureCache
from sparrow.model.media import ClipCache


def model_name(model: str | os.PathLike) -> str:
    """A readable default name: a training run's ``final`` / ``stage2-...`` checkpoint is named after its
    run directory too, so results of several runs do not all read ``final``."""
    model = Path(model).resolve()
    if model.name == "final" or model.name.startswith("stage"):
        return f"{model.parent.name}-{model.name}"
    return model.name


@dataclass
class ConditionResult:
    condition: str
    out_dir: Path
    metrics: dict[str, Any]
    errors: int
    bad_rows: int = 0


def evaluate_checkpoint(
    model_dir: str | os.PathLike,
    bench: str | os.PathLike,
    out: str | os.PathLike,
    options: EvalOptions | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    clip_cache: ClipCache | None = None,
    feature_cache: FeatureCache | None = None,
) -> list[ConditionResult]:
    """Evaluate ``model_dir`` on ``bench``; one output folder per condition (``out`` itself when there is
    one condition, ``out/<condition>`` otherwise). With ``video`` among the conditions, every other
    condition's metrics.json also holds video accuracy minus its own, paired over the same questions
    (``PAIRED_KEYS``: ``video_reliance`` for swap). ``on_progress(condition, done, total)`` after each
    batch. ``clip_cache`` shares decoded clips between calls, e.g. when several checkpoints with the same
    sampling answer the same benchmark; by default each call keeps its own, so the questions of one
    video decode it once. ``feature_cache`` likewise shares the frozen vision tower's features (e.g.
    between checkpoints that share the tower); by default each call keeps one in memory (512 MB)."""
    options = options or EvalOptions()
    options.validate()
    model_dir, bench, out = Path(model_dir), Path(bench), Path(out)
    if not bench.is_file():
        raise EvalError(f"benchmark file not found: {bench}")
    if not (model_dir / "config.json").is_file():
        raise EvalError(f"not a Sparrow checkpoint (no config.json): {model_dir}")
    rows, bad = read_bench(bench)
    if not rows:
        raise EvalError(
            f"no valid benchmark rows in {bench}" + (f" (first problem: {bad[0].reason})" if bad else "")
        )
    try:
        model, processor = load_pretrained(model_dir, device=options.device, dtype=options.dtype)
    except (ConfigError, OSError, ValueError) as e:
        raise EvalError(f"cannot load checkpoint {model_dir}: {str(e).splitlines()[0]}") from e
    processor.clip_cache = clip_cache if clip_cache is not None else ClipCache(256)
    model.requires_grad_(False)  # evaluation never trains: the tower counts as frozen for the cache
    model.feature_cache = feature_cache if feature_cache is not None else FeatureCache(512 * 2**20)
    job = _Job(model, processor, model_dir, bench, options, rows, bad)
    threads_before = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        results = [
            job.run(cond, out / cond if len(options.conditions) > 1 else out, on_progress)
            for cond in options.conditions
        ]
    finally:
        torch.set_num_threads(threads_before)
    job.add_paired(results)
    return results


@dataclass
class _Job:
    """One loaded checkpoint and benchmark, evaluated under each condition in turn."""

    model: Any
    processor: Any
    model_dir: Path
    bench: Path
    options: EvalOptions
    rows: list[BenchRow]
    bad: list[LineError]

    def __post_init__(self) -> None:
        self.sampling = parse_sampling_overrides(self.options.sampling, self.processor.sampling)
        self.name = self.options.name or model_name(self.model_dir)
        self.bench_sha = hashlib.sha1(self.bench.read_bytes()).hexdigest()
        self.preds: dict[str, list[dict[str, Any]]] = {}
        self.swap: dict[str, str] | None = None
        if "swap" in self.options.conditions:
            try:  # over the whole benchmark, so a resumed run pairs every question as the first did
                self.swap = swap_videos(self.rows, self.options.swap_seed)
            except ValueError as e:
                raise EvalError(f"{self.bench}: {e}") from None

    def fingerprint(self, cond: str, cfg: EvalConfig) -> dict[str, Any]:
        """What a saved partial run must match to be resumed."""
        o = self.options
        return {
            "model": str(self.model_dir.resolve()),
            "bench_sha1": self.bench_sha,
            "condition": cond,
            "method": o.method,
            "sampling": asdict(self.sampling),
            "max_new_tokens": o.max_new_tokens if o.method == "generate" else None,
            "media_root": cfg.media_root,
            "dtype": o.dtype,
            **({"swap_seed": o.swap_seed} if cond == "swap" else {}),
        }

    def run(
        self, cond: str, odir: Path, on_progress: Callable[[str, int, int], None] | None
    ) -> ConditionResult:
        o = self.options
        cfg = o.config(cond, self.sampling, self.swap if cond == "swap" else None)
        state = prepare_state(odir / STATE_DIR, self.fingerprint(cond, cfg), overwrite=o.overwrite)
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            done += n
            if on_progress:
                on_progress(cond, done, len(self.rows))

        preds, errors = run_eval(
            self.model, self.processor, self.rows, self.bench.parent, cfg, state / "results.jsonl", progress
        )
        metrics = compute_metrics(preds, o.buckets, o.bootstrap, o.seed)
        metrics.update(
            {"name": self.name, "condition": cond, "method": o.method, "errors": len(errors) + len(self.bad)}
        )
        self.write(odir, cond, preds, errors, metrics)
        self.preds[cond] = preds
        return ConditionResult(cond, odir, metrics, len(errors), len(self.bad))

    def add_paired(self, results: list[ConditionResult]) -> None:
        """Video accuracy minus each other condition's, paired per question, into its metrics.json."""
        if "video" not in self.preds:
            return
        for k, r in enumerate(results):
            if r.condition in PAIRED_KEYS:
                o = self.options
                block = paired_block(
                    self.preds["video"], self.preds[r.condition], o.bootstrap, o.seed + 1000 * k
                )
                r.metrics[PAIRED_KEYS[r.condition]] = block
                atomic_write_text(r.out_dir / "metrics.json", json.dumps(r.metrics, indent=2) + "\n")

    def write(
        self, odir: Path, cond: str, preds: list[dict], errors: list[dict], metrics: dict[str, Any]
    ) -> None:
        write_jsonl(odir / "predictions.jsonl", preds)
        source = str(self.bench)
        write_jsonl(
            odir / "errors.jsonl", [b.to_dict() for b in self.bad] + [{**e, "source": source} for e in errors]
        )
        atomic_write_text(odir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        run = {
            "name": self.name,
            "model": str(self.model_dir.resolve()),
            "bench": self.bench.stem,
            "bench_path": str(self.bench.resolve()),
            "condition": cond,
            "method": self.options.method,
            "sampling": asdict(condition_sampling(self.sampling, cond)),
            "questions": len(self.rows),
        }
        if cond == "swap" and self.swap is not None:
            own = {r.id: r.video for r in self.rows}
            same = sum(1 for rid, v in self.swap.items() if v == own[rid])
            run["swap"] = {"seed": self.options.swap_seed, "questions_shown_their_own_video_file": same}
        atomic_write_text(odir / "run.json", json.dumps(run, indent=2) + "\n")
