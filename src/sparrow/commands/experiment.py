"""``sparrow experiment GRID.yaml --out DIR``: train and evaluate a grid of recipe variants × seeds and
compare them against a baseline (docs/experiment.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.commands._jobs import EXECUTOR
from sparrow.commands._options import out_option
from sparrow.ui import UsageError


def experiment_cmd(
    grid: Path = typer.Argument(..., help="Grid YAML (configs/experiments/*.yaml).", show_default=False),
    out: Path = out_option("Experiment folder: runs/, results.jsonl, table.md, report.html."),
    executor: str = EXECUTOR,
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Runs trained at the same time."),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="CPU threads per run (default: the cores / --workers, less the loader processes).",
    ),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: a GPU if available)."),
) -> None:
    """Train every variant of a recipe with every seed, evaluate each final model on one benchmark
    (video / text / swap ... conditions), and write one table and report.html with the paired bootstrap
    interval of each variant minus the baseline. Resumable: run the same command again; a run whose
    settings changed is refused."""
    from sparrow.commands._jobs import job_progress, step_progress
    from sparrow.experiment import ExperimentError, ExperimentOptions, load_grid, run_experiment
    from sparrow.jobs import JobError

    try:
        spec = load_grid(grid)
    except ExperimentError as e:
        raise UsageError(str(e)) from e
    in_process = executor == "local" and workers == 1
    # Runs in this process show their training and eval bars; runs elsewhere one bar over the runs.
    display: Any = step_progress() if in_process else job_progress(f"experiment {spec.name}")
    try:
        with display as progress:
            options = ExperimentOptions(executor=executor, workers=workers, threads=threads, device=device)
            if in_process:
                options.hooks = progress
            else:
                options.on_progress = progress
            summary = run_experiment(spec, out, options)
    except (ExperimentError, JobError) as e:
        raise UsageError(str(e)) from e
    _print(summary, out)


def _print(summary: Any, out: Path) -> None:
    from sparrow.ui import err_console, rows_table, summary_table

    rows_table(f"sparrow experiment: {summary.name}", summary.columns, summary.rows)
    c = summary.counts
    rows = {"runs": f"{c.ok} of {c.items} finished ({c.resumed} from an earlier run)", **summary.files}
    summary_table("output", rows)
    if c.failed:
        err_console.print(f"{c.failed} run(s) failed: see {out / 'errors.jsonl'}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("experiment")(experiment_cmd)
