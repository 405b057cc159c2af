"""Running a grid: every (variant, seed) is one item of a ``sparrow.jobs`` stage that trains the recipe
and evaluates its final model, on the in-process, local-pool or Ray executor.

    OUT/runs/<variant>/seed<k>/.state/fingerprint.json   the run's settings (the guard)
    OUT/runs/<variant>/seed<k>/train/                    the training run (``sparrow.train.rundir``)
    OUT/runs/<variant>/seed<k>/eval/<condition>/         predictions.jsonl, metrics.json (``sparrow eval``)
    OUT/.state/                                          one saved result per finished run (``sparrow.jobs``)
    OUT/results.jsonl, table.md, comparisons.json, report.html, figures/   written by ``sparrow.experiment.collect``

Resume is in three layers: a finished run is skipped by the job state (nothing is loaded); an
interrupted training run continues from its last checkpoint (``resume=True``); an interrupted
evaluation from its saved batches. A run directory made with other settings is refused before any run
starts (``sparrow.run_guard``), as is a training run with another recipe (the trainer's guard).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.experiment.collect import ExperimentCollector
from sparrow.experiment.errors import ExperimentError
from sparrow.experiment.grid import EvalSpec, Grid, RunSpec
from sparrow.jobs import JobEvent, JobOptions, Stage, WorkItem, run_job
from sparrow.jobs.hooks import StepHooks
from sparrow.jobs.stage import Collector, ItemResult
from sparrow.jobs.state import FINGERPRINT
from sparrow.run_guard import claim

GUARD_DIR = ".state"  # under a run directory: the settings it was made with


@dataclass
class ExperimentOptions:
    """How to run a grid (none of it changes the results)."""

    executor: str = "local"
    workers: int = 1  # runs at a time
    # torch CPU threads per run (default on the local executor: the cores / workers, less the run's
    # loader processes, as `sparrow train` does; on Ray: the actor's default)
    threads: int | None = None
    device: str | None = None  # cpu, cuda or cuda:N (default: a GPU when there is one)
    on_progress: Callable[[JobEvent], None] | None = None  # after every finished run
    # Steps of each run (train bars, eval progress): only when runs are in this process (workers 1).
    hooks: StepHooks | None = None


def settings_key(run: RunSpec, spec: EvalSpec) -> str:
    """The job-state key of a run: its name and a digest of everything its result depends on, so a
    result saved for other settings (or fewer conditions) is never taken for this one."""
    text = json.dumps([run.fingerprint(spec), list(spec.conditions)], sort_keys=True, default=str)
    return f"{run.rel_dir}@{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def claim_runs(out: Path, runs: list[RunSpec], spec: EvalSpec) -> None:
    """Create each run directory with its settings, or refuse one made with other settings."""
    for run in runs:
        changed = claim(out / run.rel_dir / GUARD_DIR / FINGERPRINT, run.fingerprint(spec))
        if changed:
            raise ExperimentError(
                f"variant {run.variant!r} seed {run.seed}: {out / run.rel_dir} was made with other "
                f"settings (changed: {', '.join(changed)}); give the changed variant a new name or use another --out"
            )


def _last_losses(metrics: Path) -> dict[str, float]:
    from sparrow.train.rundir import read_metrics

    return {str(row["stage_name"]): float(row["loss"]) for row in read_metrics(metrics) if "loss" in row}


class ExperimentStage(Stage):
    """One item per (variant, seed): train, then evaluate the final model under every condition."""

    name = "experiment"
    unit = "runs"

    def __init__(self, grid: Grid, runs: list[RunSpec], out: Path, options: ExperimentOptions):
        self.grid, self.runs, self.spec, self.out = grid, runs, grid.eval, Path(out).resolve()
        self.threads, self.device = options.threads, options.device
        self.share_cores = options.threads is None and options.executor == "local"
        self.workers = options.workers
        self.hooks = options.hooks

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "hooks": None}  # progress callbacks stay in the driver

    def fingerprint(self) -> dict[str, Any]:
        # Runs are guarded one by one (``claim_runs``), so a grid may grow new variants and seeds.
        return {"job": "sparrow experiment", "version": 1}

    def items(self) -> Iterator[WorkItem]:
        for run in self.runs:
            yield WorkItem(settings_key(run, self.spec), run, id=f"{run.variant} seed {run.seed}")

    def total(self) -> int:
        return len(self.runs)

    def reusable(self, item: WorkItem, result: ItemResult) -> bool:
        """A saved result holds while its checkpoint and predictions are still there."""
        if not result.ok or result.value is None:
            return result.ok
        files = [self.out / result.value["dir"] / "train" / "final" / "config.json"]
        files += [self.out / c["predictions"] for c in result.value["conditions"].values()]
        return all(f.is_file() for f in files)

    def collector(self, out: Path) -> Collector:
        return ExperimentCollector(self.grid, out)

    def process(self, payload: Any) -> dict[str, Any]:
        run: RunSpec = payload
        run_dir = self.out / run.rel_dir
        device = self.device or _default_device()
        hooks = self.hooks or StepHooks()
        recipe = run.build_recipe()
        threads = self.threads
        if self.share_cores:  # several runs on one machine share its cores
            from sparrow.train.trainer import auto_threads

            threads = auto_threads(recipe.num_workers, self.workers)
        t0 = time.perf_counter()
        hooks.start(f"train {run.variant} seed {run.seed}")
        self._train(run, recipe, run_dir / "train", threads, hooks)
        t1 = time.perf_counter()
        hooks.start(f"eval {run.variant} seed {run.seed}")
        conditions = self._evaluate(run, run_dir, device, threads, hooks)
        return {
            "variant": run.variant,
            "seed": run.seed,
            "dir": run.rel_dir,
            "final_loss": _last_losses(run_dir / "train" / "metrics.jsonl"),
            "train_seconds": round(t1 - t0, 2),
            "eval_seconds": round(time.perf_counter() - t1, 2),
            "conditions": conditions,
        }

    def _train(self, run: RunSpec, recipe: Any, out: Path, threads: int | None, hooks: StepHooks) -> None:
        from sparrow.train.options import RunOptions
        from sparrow.train.trainer import train

        options = RunOptions(
            out=out,
            data_root=Path(run.data_root),
            resume=True,  # an interrupted run goes on from its last checkpoint; another recipe is refused
            max_steps=run.max_steps,
            device=self.device,
            progress=hooks.train,
            threads=threads,
        )
        train(recipe, options)

    def _evaluate(
        self, run: RunSpec, run_dir: Path, device: str, threads: int | None, hooks: StepHooks
    ) -> dict[str, Any]:
        from sparrow.eval.runner import evaluate_checkpoint

        options = self.spec.options(f"{run.variant}-seed{run.seed}", threads, device)
        one = len(options.conditions) == 1  # evaluate_checkpoint writes a lone condition into `out` itself
        out = run_dir / "eval" / options.conditions[0] if one else run_dir / "eval"
        label = f"eval {run.variant} seed {run.seed}"
        assert self.spec.bench is not None
        results = evaluate_checkpoint(
            run_dir / "train" / "final",
            self.spec.bench,
            out,
            options,
            on_progress=lambda cond, done, total: hooks.advance(f"{label} {cond}", done, total),
        )
        return {
            r.condition: {
                "n": r.metrics["n"],
                "accuracy": r.metrics["accuracy"],
                "ci95": r.metrics["ci95"],
                "errors": r.errors + r.bad_rows,
                "by_category": {k: v["accuracy"] for k, v in r.metrics["by_category"].items()},
                "predictions": str((r.out_dir / "predictions.jsonl").relative_to(self.out)),
            }
            for r in results
        }


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_experiment(grid: Grid, out: str | os.PathLike, options: ExperimentOptions | None = None) -> Any:
    """Train and evaluate every (variant, seed) of ``grid`` into ``out`` (resumably) and write the results,
    the table and the report; returns the ``ExperimentSummary`` (also in ``out/summary.json``)."""
    options = options or ExperimentOptions()
    if options.workers < 1:
        raise ExperimentError("workers must be at least 1")
    out = Path(out)
    runs = grid.runs()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExperimentError(f"cannot create output directory {out}: {e.strerror}") from e
    claim_runs(out, runs, grid.eval)
    stage = ExperimentStage(grid, runs, out, options)
    stage_options = JobOptions(
        workers=options.workers, executor=options.executor, on_progress=options.on_progress
    )
    return run_job(stage, out, stage_options)
