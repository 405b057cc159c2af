"""The summary shared by the jobs whose items are videos (``sparrow frames``, ``sparrow refine``): what
the runner counted, the run's figures and the settings, around the stage's own counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from sparrow.jobs.stage import JobCounts, JobReport

_COUNTS = tuple(f.name for f in fields(JobCounts))
_RUN = ("seconds", "workers", "executor")


@dataclass
class VideoJobSummary(JobCounts):
    """The runner's counts (its items are videos). Subclasses add their own fields; ``summary.json`` lists
    the counts (``items`` as ``videos``), the subclass's fields, the run (seconds, workers, executor),
    then the fields named in ``tail`` (``settings`` last)."""

    tail: ClassVar[tuple[str, ...]] = ("settings",)

    seconds: float = 0.0
    workers: int = 1
    executor: str = "local"
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def videos(self) -> int:
        return self.items

    def record(self, report: JobReport) -> None:
        """Take the runner's counts and figures (called from ``Collector.close``)."""
        for name in (*_COUNTS, *_RUN):
            setattr(self, name, getattr(report, name))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(d["seconds"], 3)
        counts = {"videos" if k == "items" else k: d.pop(k) for k in _COUNTS}
        run = {k: d.pop(k) for k in _RUN}
        tail = {k: d.pop(k) for k in self.tail}
        return {**counts, **d, **run, **tail}
