"""The driver side of the refine job: refined ``caption.json``, native caption training records, the
log of dropped captions, the ledger, the trinity report and the summary."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sparrow.caption_metrics import trinity
from sparrow.captions import Line, Transcript, load_captions, write_captions
from sparrow.io import JsonlWriter, atomic_write_text
from sparrow.jobs import Collector, ItemResult, JobReport, VideoJobSummary, WorkItem
from sparrow.refine.ledger import Ledger

# The one caption prompt: refined records train the captioner with it, and the flywheel's captioner is
# asked with it when it re-annotates (the same words, so training and use cannot drift apart).
CAPTION_QUESTION = "Describe what happens in this clip in one sentence."
PROMPT = f"<video>\n{CAPTION_QUESTION}"


@dataclass
class RefineSummary(VideoJobSummary):
    tail: ClassVar[tuple[str, ...]] = ("ledger", "quality", "settings")

    captions: int = 0
    records: int = 0
    dropped: int = 0  # captions dropped (dropped.jsonl)
    failed_blocks: int = 0  # blocks whose request failed (dropped.jsonl; a re-run retries them)
    untimed: int = 0
    ledger: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] | None = None


def caption_record(video_id: str, k: int, video: str, line: Line, root: Path) -> dict[str, Any]:
    """A native training record: the video segment of a caption and the caption as the reply."""
    return {
        "id": f"{video_id}-refined-{k:03d}",
        "messages": [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": line.text}],
        "media": [
            {"type": "video", "path": os.path.relpath(video, root), "start": line.start, "end": line.end}
        ],
        "source": "refine",
        "meta": {"video_id": video_id},
    }


class RefineCollector(Collector):
    def __init__(
        self,
        out: Path,
        records: Path,
        reference: Path | None,
        trinity: Any,
        settings: dict[str, Any],
        ids: list[str] | None = None,
    ):
        self.out, self.reference, self.trinity_cfg, self.ids = out, reference, trinity, ids
        self.root = records.parent
        self.records = JsonlWriter(records)
        self.dropped = JsonlWriter(out / "dropped.jsonl")
        self.transcripts: list[Transcript] = []
        self.ledger = Ledger()
        self.summary = RefineSummary(settings=settings)

    def add(self, item: WorkItem, result: ItemResult) -> int:
        v = result.value or {}
        vid, duration = v["video_id"], float(v["duration"])
        lines = tuple(Line(*x) for x in v["captions"])
        self.transcripts.append(Transcript(vid, lines))
        for k, line in enumerate(lines):
            seg = Line(line.start, min(line.end, duration), line.text)
            if seg.end > seg.start:  # a caption timed at the very end has no segment to train on
                self.records.write(caption_record(vid, k, v["video"], seg, self.root))
        for reason in v["dropped"]:
            self.dropped.write({"id": vid, "reason": reason})
        failed = v.get("failed_blocks", [])
        for reason in failed:
            self.dropped.write({"id": vid, "reason": reason})
        self.summary.dropped += len(v["dropped"])
        self.summary.failed_blocks += len(failed)
        self.summary.untimed += v["untimed"]
        self.ledger.merge(v["ledger"])
        return len(lines)

    def close(self, report: JobReport) -> RefineSummary:
        s = self.summary
        s.records, s.captions = self.records.count, sum(len(t.lines) for t in self.transcripts)
        self.records.close()
        self.dropped.close()
        write_captions(self.out / "caption.json", self.transcripts)
        s.ledger = self.ledger.to_dict()
        atomic_write_text(self.out / "ledger.json", json.dumps(s.ledger, indent=2) + "\n")
        reference = load_captions(self.reference) if self.reference is not None else None
        if reference is not None and self.ids is not None:
            # Quality over the videos this run was given (a failed one scores 0), not the whole reference.
            reference = {v: reference[v] for v in self.ids if v in reference}
        rep = trinity({t.video_id: t for t in self.transcripts}, reference, self.trinity_cfg)
        rep.write(self.out / "trinity.json")
        s.quality = rep.quality
        s.record(report)
        return s

    def abort(self) -> None:
        self.records.abort()
        self.dropped.abort()
