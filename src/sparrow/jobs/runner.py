"""Run a whole stage into an output directory: the skeleton every data job shares.

``run_job`` owns what synth, frames and world used to repeat: the state directory and resume,
``--overwrite``, clean-up of temp files a killed run left, ``errors.jsonl`` with one schema
(``{"id", "line", "source", "reason"}``, written only when an item failed), ``summary.json`` and one
progress event per item.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from sparrow.io import JsonlWriter, atomic_write_text
from sparrow.jobs.executors import run_items
from sparrow.jobs.stage import ItemResult, JobError, JobEvent, JobReport, Stage, Summary, WorkItem
from sparrow.jobs.state import STATE_DIR, prepare_state

ERRORS = "errors.jsonl"
SUMMARY = "summary.json"


@dataclass
class JobOptions:
    """How to run a job (none of it changes the outputs)."""

    workers: int = 1
    executor: str = "local"
    overwrite: bool = False
    on_progress: Callable[[JobEvent], None] | None = None


class JobArgs(TypedDict, total=False):
    """The keyword arguments of every job entry point (``synthesize``, ``extract``, ``refine``): the
    fields of :class:`JobOptions`, passed on as ``JobOptions(**job)``."""

    workers: int
    executor: str
    overwrite: bool
    on_progress: Callable[[JobEvent], None] | None


def error_row(item: WorkItem, reason: str | None) -> dict[str, Any]:
    """The one ``errors.jsonl`` row shape of every job."""
    return {"id": item.id, "line": item.line, "source": item.source, "reason": reason}


class _ErrorLog:
    """``errors.jsonl``: opened on the first failure; a run without failures removes a stale one."""

    def __init__(self, path: Path):
        self.path = path
        self._writer: JsonlWriter | None = None

    def add(self, item: WorkItem, result: ItemResult) -> None:
        if self._writer is None:
            self._writer = JsonlWriter(self.path)
        self._writer.write(error_row(item, result.error))

    def close(self) -> None:
        if self._writer is None:
            self.path.unlink(missing_ok=True)
        else:
            self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


def _prepare(stage: Stage, out: Path, overwrite: bool) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise JobError(f"cannot create output directory {out}: {e.strerror}") from e
    if overwrite:
        stage.discard(out)
    state = prepare_state(out / STATE_DIR, stage.fingerprint(), overwrite=overwrite)
    # Outputs are renamed into place only when complete; temp files of a killed run are just litter.
    for pattern in stage.temp_globs:
        for tmp in out.glob(pattern):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
    return state


def run_job(stage: Stage, out: str | os.PathLike, options: JobOptions | None = None) -> Any:
    """Run ``stage`` into ``out`` and return its summary (also written to ``out/summary.json``).

    Items run on ``options.executor`` with ``options.workers`` workers; a re-run of the same command
    resumes, and the outputs are identical for any worker count. An exception from ``on_progress``
    stops the job; its outputs are left as they were and a re-run resumes."""
    options = options or JobOptions()
    out = Path(out)
    state = _prepare(stage, out, options.overwrite)
    report = JobReport(job=stage.name, workers=options.workers, executor=options.executor)
    report.total = stage.total()
    queue: deque[WorkItem] = deque()

    def tracked() -> Iterator[WorkItem]:
        for item in stage.items():
            queue.append(item)
            yield item

    collector = stage.collector(out)
    errors = _ErrorLog(out / ERRORS)
    start = time.perf_counter()
    try:
        results = run_items(
            stage, tracked(), workers=options.workers, state_dir=state, executor=options.executor
        )
        for result in results:
            item = queue.popleft()
            report.count(result)
            if result.ok:
                report.units += collector.add(item, result)
            else:
                errors.add(item, result)
            if options.on_progress is not None:
                options.on_progress(_event(stage, report, result))
    except BaseException:
        collector.abort()
        errors.abort()
        raise
    report.seconds = time.perf_counter() - start
    summary: Summary = collector.close(report)
    errors.close()
    text = json.dumps(summary.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
    atomic_write_text(out / SUMMARY, text)
    return summary


def _event(stage: Stage, report: JobReport, result: ItemResult) -> JobEvent:
    return JobEvent(
        job=stage.name,
        done=report.items,
        total=report.total,
        ok=result.ok,
        resumed=result.skipped,
        units=report.units,
        unit=stage.unit,
    )
