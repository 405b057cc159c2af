"""What every caption job shares (the refine stage, the flywheel's re-annotation): one item per video of
a ``caption.json`` (a malformed entry becomes its error row), the video looked up and probed before any
request is paid for, the collector of captions, training records and the trinity report, and the reuse
of finished videos whose file is still there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sparrow.caption_metrics import TrinityConfig
from sparrow.captions import read_entries
from sparrow.chat.base import Backend, Request, Response
from sparrow.jobs import Collector, ItemResult, Stage, WorkItem
from sparrow.refine.collect import RefineCollector
from sparrow.refine.errors import RefineError
from sparrow.refine.ledger import Ledger
from sparrow.video.info import VIDEO_SUFFIXES


def find_video(videos: Path, video_id: str) -> Path | None:
    for suffix in VIDEO_SUFFIXES:
        p = videos / f"{video_id}{suffix}"
        if p.is_file():
            return p
    return None


def complete_all(backend: Backend | None, requests: list[Request], ledger: Ledger) -> list[Response]:
    """Every request's reply, counted in ``ledger``; one that failed after the backend's retries fails the
    video (its successful replies are cached, so a re-run pays only for the rest)."""
    assert backend is not None, "setup() not called"
    responses = backend.complete(requests)
    for r in responses:
        ledger.add(r)
    failed = [r.error for r in responses if r.error]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(requests)} requests failed: {failed[0]}")
    return responses


@dataclass(frozen=True)
class CaptionJob:
    """A caption job's input ``captions`` (HowTo100M caption.json) and ``videos`` folder, its folder
    ``out``, where its training records go (``records``, default OUT/captions.jsonl; media paths relative
    to it), the ground truth it is scored against (``reference``) and ``limit`` (the first N videos)."""

    captions: str | os.PathLike
    videos: str | os.PathLike
    out: str | os.PathLike
    records: str | os.PathLike | None = None
    reference: str | os.PathLike | None = None
    trinity: TrinityConfig = field(default_factory=TrinityConfig)
    limit: int | None = None


class CaptionStage(Stage):
    unit = "captions"

    def __init__(self, job: CaptionJob):
        self.captions, self.videos, self.out = Path(job.captions), Path(job.videos), Path(job.out)
        self.records = Path(job.records) if job.records else self.out / "captions.jsonl"
        self.reference = Path(job.reference) if job.reference else None
        self.trinity = job.trinity
        entries = read_entries(self.captions)
        self._entries = entries[: job.limit] if job.limit is not None else entries

    def total(self) -> int:
        return len(self._entries)

    def items(self) -> Iterator[WorkItem]:
        for t in self._entries:
            if isinstance(t, dict):
                yield WorkItem(key=f"bad/{t['id']}", id=t["id"], source=t["source"], error=t["reason"])
                continue
            payload = {"video_id": t.video_id, "lines": [[x.start, x.end, x.text] for x in t.lines]}
            yield WorkItem(key=t.video_id, payload=payload, id=t.video_id, source=str(self.captions))

    def video(self, video_id: str) -> tuple[Path, float]:
        """The video's file and duration; a missing or unreadable video fails its item here."""
        from sparrow.video import probe

        video = find_video(self.videos, video_id)
        if video is None:
            raise RefineError(f"no video for {video_id} in {self.videos}")
        return video, probe(video).duration

    def collector(self, out: Path) -> Collector:
        ids = [t["id"] if isinstance(t, dict) else t.video_id for t in self._entries]
        return RefineCollector(out, self.records, self.reference, self.trinity, self.fingerprint(), ids=ids)

    def reusable(self, item: WorkItem, result: ItemResult) -> bool:
        return not result.ok or Path((result.value or {}).get("video", "")).is_file()

    def discard(self, out: Path) -> None:
        for name in ("caption.json", "ledger.json", "dropped.jsonl", "trinity.json"):
            (out / name).unlink(missing_ok=True)
        if self.records.parent == out:
            self.records.unlink(missing_ok=True)
