"""The flywheel's re-annotation: a trained captioner is asked, for every caption segment of the previous
round, what happens in that clip; its answers become the round's captions. One more caption stage of
``sparrow.jobs`` (one item per video), sharing the refine job's backend (the ``sparrow`` backend behind
the response cache) and its outputs (caption.json, training records, ledger, trinity report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sparrow.refine.backends.base import Backend, Message, Request, VideoRef
from sparrow.refine.captions import Line
from sparrow.refine.collect import CAPTION_QUESTION
from sparrow.refine.config import RefineConfig, build_backend
from sparrow.refine.ledger import Ledger
from sparrow.refine.stage import CaptionJob, CaptionStage, complete_all

MIN_SEGMENT = 1.0  # seconds: a caption timed at the very end of its video is asked about its last second


def segment(line: Line, duration: float) -> tuple[float, float]:
    """The clip a caption is asked about: its own span, inside the video and at least MIN_SEGMENT long."""
    end = min(max(line.end, line.start + MIN_SEGMENT), duration)
    start = max(0.0, min(line.start, end - MIN_SEGMENT))
    return start, end


class AnnotateStage(CaptionStage):
    """Re-captions every segment of ``captions`` with the checkpoint, asked exactly as its training records
    ask (``CAPTION_QUESTION`` with the clip), greedily, at most ``max_new_tokens`` a caption."""

    name = "annotate"

    def __init__(self, job: CaptionJob, checkpoint: str | os.PathLike, max_new_tokens: int):
        super().__init__(job)
        self.cfg = RefineConfig(backend="sparrow", model=str(checkpoint), max_tokens=max_new_tokens)
        self._backend: Backend | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "checkpoint": str(Path(str(self.cfg.model)).resolve()),
            "captions": str(self.captions.resolve()),
            "max_new_tokens": self.cfg.max_tokens,
            "question": CAPTION_QUESTION,
        }

    def setup(self) -> None:
        self._backend = build_backend(self.cfg, str(self.out / "cache"))

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        vid = payload["video_id"]
        video, duration = self.video(vid)
        spans = [segment(Line(*x), duration) for x in payload["lines"]]
        sampling = self.cfg.sampling()
        ask = [Message("user", CAPTION_QUESTION, video=VideoRef(str(video), a, b)) for a, b in spans]
        ledger = Ledger()
        responses = complete_all(self._backend, [Request((m,), sampling) for m in ask], ledger)
        captions, dropped = [], []
        for (a, b), r in zip(spans, responses, strict=True):
            text = " ".join(r.text.split())
            if text:
                captions.append([a, b, text])
            else:
                dropped.append(f"empty caption for {a:g}-{b:g}s")
        return {
            "video_id": vid,
            "video": str(video),
            "duration": duration,
            "captions": captions,
            "dropped": dropped,
            "untimed": 0,
            "ledger": ledger.to_dict(),
        }
