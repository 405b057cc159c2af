"""The contract every data job fills in: what its items are, what a worker sets up once, how one item
is processed and how results become the job's outputs.

A :class:`Stage` is picklable configuration: the executor sends a copy to every worker, which calls
``setup()`` once and then ``process(payload)`` per item. Everything on the driver side (reading items,
writing outputs in input order) goes through ``items()`` and the :class:`Collector` from
``collector(out)``, so no open file ever travels to a worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class JobError(RuntimeError):
    """A whole job cannot run (bad state directory, unknown executor, workers that cannot start)."""


@dataclass
class WorkItem:
    """One unit of work. ``key`` must be unique and stable across runs (it names the saved result).

    ``id``, ``line`` and ``source`` only describe the item in ``errors.jsonl``; ``error`` marks an item
    already known to be bad while reading (invalid JSON, duplicate id): it is reported, never run."""

    key: str
    payload: Any = None
    id: str | None = None
    line: int | None = None
    source: str | None = None
    error: str | None = None


@dataclass
class ItemResult:
    key: str
    ok: bool
    value: dict[str, Any] | None = None
    error: str | None = None
    skipped: bool = False  # finished by an earlier run and loaded from state


class Summary(Protocol):
    """What a job reports: written to ``summary.json`` and returned to the caller."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class JobCounts:
    """How many items a job took, how many succeeded or failed, and how many an earlier run had finished
    (``resumed``); the runner's report and the summaries of the video jobs share them."""

    items: int = 0
    ok: int = 0
    failed: int = 0
    resumed: int = 0

    def count(self, result: ItemResult) -> None:
        self.items += 1
        self.ok += result.ok
        self.failed += not result.ok
        self.resumed += result.skipped


@dataclass(kw_only=True)
class JobReport(JobCounts):
    """What the job runner counted, handed to ``Collector.close`` to build the stage's summary."""

    job: str
    workers: int
    executor: str
    total: int | None = None
    units: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class JobEvent:
    """A progress event, one per finished item, the same for every job (the CLI draws a progress bar).

    ``units`` counts what the job makes (frames, videos) so far, ``unit`` names it."""

    job: str
    done: int
    total: int | None
    ok: bool
    resumed: bool
    units: int
    unit: str


class Collector(ABC):
    """Driver side of a stage: receives every result in input order and writes the outputs.

    Outputs must appear complete or not at all: write to temp files in ``add`` and move them into
    place in ``close``; ``abort`` discards them when the job stops early."""

    def add(self, item: WorkItem, result: ItemResult) -> int:
        """Take one successful result; return how many units (frames, videos) it made."""
        return 1

    @abstractmethod
    def close(self, report: JobReport) -> Summary:
        """Move the outputs into place and return the stage's summary."""

    def abort(self) -> None:
        """Discard what ``add`` wrote; the earlier outputs stay as they were."""
        return None  # optional hook: nothing to do by default


class Stage(ABC):
    """Base class of a data job (synth, frames, world). Subclasses set ``name`` and ``unit`` and
    implement ``fingerprint``, ``items``, ``process`` and ``collector``; ``setup``, ``total``,
    ``reusable``, ``discard`` and ``temp_globs`` have defaults that suit most jobs."""

    name: str = "job"
    unit: str = "items"
    # Temp files an interrupted run may leave (atomic writes use ``.NAME.RANDOM.tmp``).
    temp_globs: tuple[str, ...] = (".*.tmp",)

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Settings a resumed run must share with the first one (a different fingerprint is refused)."""

    @abstractmethod
    def items(self) -> Iterator[WorkItem]:
        """The items, streamed in the order their results are collected."""

    def total(self) -> int | None:
        """How many items there will be, if cheap to know (for the progress bar)."""
        return None

    def setup(self) -> None:
        """Build per-worker state (fonts, renderer, decoders, models) once, before the first item."""
        return None  # optional hook: nothing to do by default

    @abstractmethod
    def process(self, payload: Any) -> dict[str, Any]:
        """Process one item in a worker and return a JSON-serialisable dict; raise for a bad item
        (the exception's first line becomes the reason in ``errors.jsonl``)."""

    @abstractmethod
    def collector(self, out: Path) -> Collector:
        """The driver-side writer of this job's outputs under ``out``."""

    def reusable(self, item: WorkItem, result: ItemResult) -> bool:
        """Whether a result saved by an earlier run still holds (say no when its files were lost)."""
        return True

    def discard(self, out: Path) -> None:
        """Remove outputs of an earlier run (``--overwrite``); the state directory is removed for you."""
        return None  # optional hook: nothing to do by default
