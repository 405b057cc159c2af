"""The one shape of every data job (synth, frames, world): a :class:`Stage` says what its items are,
what one worker sets up once and how one item is processed; :func:`run_job` runs it resumably on an
executor (in-process, local process pool or Ray) and writes ``errors.jsonl`` and ``summary.json``.
See docs/jobs.md."""

from sparrow.jobs.executors import EXECUTORS, default_workers, run_items
from sparrow.jobs.items import failure_reason
from sparrow.jobs.runner import JobArgs, JobOptions, run_job
from sparrow.jobs.stage import (
    Collector,
    ItemResult,
    JobCounts,
    JobError,
    JobEvent,
    JobReport,
    Stage,
    WorkItem,
)
from sparrow.jobs.state import STATE_DIR, prepare_state
from sparrow.jobs.summary import VideoJobSummary

__all__ = [
    "EXECUTORS",
    "STATE_DIR",
    "Collector",
    "ItemResult",
    "JobArgs",
    "JobCounts",
    "JobError",
    "JobEvent",
    "JobOptions",
    "JobReport",
    "Stage",
    "VideoJobSummary",
    "WorkItem",
    "default_workers",
    "failure_reason",
    "prepare_state",
    "run_items",
    "run_job",
]
