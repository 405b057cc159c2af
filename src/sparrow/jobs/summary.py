"""The summary shared by the jobs whose items are videos (``sparrow frames``, ``sparrow refine``): what
the runner counted, the run's figures and the settings, around the stage's own counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from sparrow.jobs.stage import JobReport

_COUNTS = ("videos", "ok", "failed", "resumed")
_RUN = ("seconds", "workers", "executor")


@dataclass
class VideoJobSummary:
    """Subclasses add their own fields; ``summary.json`` lists the counts, the subclass's fields, the run
    (seconds, workers, executor), then the fields named in ``tail`` (``settings`` last)."""

    tail: ClassVar[tuple[str, ...]] = ("settings",)

    videos: int = 0
    ok: int = 0
    failed: int = 0
    resumed: int = 0
    seconds: float = 0.0
    workers: int = 1
    executor: str = "local"
    settings: dict[str, Any] = field(default_factory=dict)

    def record(self, report: JobReport) -> None:
        """Take the runner's counts and figures (called from ``Collector.close``)."""
        self.videos, self.ok, self.failed, self.resumed = (
            report.items,
            report.ok,
            report.failed,
            report.resumed,
        )
        self.seconds, self.workers, self.executor = report.seconds, report.workers, report.executor

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(d["seconds"], 3)
        ends = (*_COUNTS, *_RUN, *self.tail)
        own = {k: v for k, v in d.items() if k not in ends}
        return {**{k: d[k] for k in _COUNTS}, **own, **{k: d[k] for k in (*_RUN, *self.tail)}}
