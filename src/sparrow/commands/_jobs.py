"""What every data-job command (synth, frames, world) shares: the run options, the progress bar drawn
from ``sparrow.jobs`` progress events, and the one way a job's typed errors end the command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer

from sparrow.jobs import JobError, JobEvent, default_workers
from sparrow.ui import UsageError, make_progress

T = TypeVar("T")

WORKERS = typer.Option(0, "--workers", "-j", help="Worker processes (0: one per CPU core).")
EXECUTOR = typer.Option(
    "local",
    "--executor",
    help="'local' (this machine: a process pool) or 'ray' (a Ray cluster, docs/jobs.md).",
)


def overwrite_option(what: str) -> bool:
    return typer.Option(False, "--overwrite", help=f"Discard an earlier run's state and {what} in --out.")


def resolve_workers(workers: int) -> int:
    return workers if workers > 0 else default_workers()


@contextmanager
def job_progress(description: str) -> Iterator[Callable[[JobEvent], None]]:
    """A rich progress bar on stderr for one job; yields the ``on_progress`` callback to pass it."""
    with make_progress() as progress:
        task = progress.add_task(description, total=None, rate="")

        def on_progress(event: JobEvent) -> None:
            progress.update(task, total=event.total, completed=event.done, rate=f"{event.units} {event.unit}")

        yield on_progress


def run_with_progress(
    description: str, job: Callable[..., T], *args: Any, errors: tuple[type[Exception], ...], **kwargs: Any
) -> T:
    """``job(*args, **kwargs, on_progress=...)`` under a progress bar; ``JobError`` and the job's own
    ``errors`` end the command with their one-line message."""
    try:
        with job_progress(description) as on_progress:
            return job(*args, on_progress=on_progress, **kwargs)
    except (*errors, JobError) as e:
        raise UsageError(str(e)) from e


@contextmanager
def step_progress() -> Iterator[Any]:
    """One display for a run of several steps (the demo, the flywheel): a line as each step starts, a bar
    per job and the trainer's bars; yields the ``StepHooks`` to hand the run."""
    from rich.markup import escape

    from sparrow.commands.train import TrainProgress
    from sparrow.jobs.hooks import StepHooks

    progress = make_progress()
    tasks: dict[str, Any] = {}

    def items(name: str, done: int, total: int | None) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total, rate="")
        progress.update(tasks[name], completed=done, total=total)

    with progress:
        yield StepHooks(
            step=lambda name: progress.console.print(f"[bold]▶ {escape(name)}"),
            items=items,
            train=TrainProgress(progress),
            note=lambda text: progress.console.print(
                f"[yellow]note:[/yellow] {escape(text)}", soft_wrap=True
            ),
        )
