"""The flywheel's re-annotation: a trained captioner is asked, for every caption segment of the previous
round, what happens in that clip; its answers become the round's captions. One more caption stage of
``sparrow.jobs`` (one item per video), sharing the refine job's backend (the ``sparrow`` backend behind
the response cache) and its outputs (caption.json, training records, ledger, trinity report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sparrow.captions import Line
from sparrow.chat.base import Backend, Message, Request, VideoRef
from sparrow.flywheel.narrated import narrated_question, segment
from sparrow.refine.caption_stage import CaptionJob, CaptionStage, complete_all
from sparrow.refine.collect import CAPTION_QUESTION
from sparrow.refine.config import RefineConfig, build_backend
from sparrow.refine.ledger import Ledger
from sparrow.refine.prompts import NO_CAPTION


class AnnotateStage(CaptionStage):
    """Re-captions every line of ``captions`` with the checkpoint, asked exactly as its training records ask,
    greedily, at most ``max_new_tokens`` a caption: the clip with ``CAPTION_QUESTION``, or with
    ``narrated`` the clip and the line's words (``narrated_question``), where a reply of NO_CAPTION drops
    the line."""

    name = "annotate"

    def __init__(
        self, job: CaptionJob, checkpoint: str | os.PathLike, max_new_tokens: int, narrated: bool = False
    ):
        super().__init__(job)
        self.narrated = narrated
        self.cfg = RefineConfig(backend="sparrow", model=str(checkpoint), max_tokens=max_new_tokens)
        self._backend: Backend | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "checkpoint": str(Path(str(self.cfg.model)).resolve()),
            "captions": str(self.captions.resolve()),
            "max_new_tokens": self.cfg.max_tokens,
            "question": narrated_question("...") if self.narrated else CAPTION_QUESTION,
        }

    def setup(self) -> None:
        self._backend = build_backend(self.cfg, str(self.out / "cache"))

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        vid = payload["video_id"]
        video, duration = self.video(vid)
        lines = [Line(*x) for x in payload["lines"]]
        spans = [segment(x, duration) for x in lines]
        decoding = self.cfg.decoding()
        questions = [narrated_question(x.text) if self.narrated else CAPTION_QUESTION for x in lines]
        ask = [
            Message("user", q, video=VideoRef(str(video), *span))
            for q, span in zip(questions, spans, strict=True)
        ]
        ledger = Ledger()
        responses = complete_all(self._backend, [Request((m,), decoding) for m in ask], ledger)
        captions, dropped = [], []
        for (a, b), r in zip(spans, responses, strict=True):
            text = " ".join(r.text.split())
            if text and text != NO_CAPTION:
                captions.append([a, b, text])
            else:
                dropped.append(f"{'no' if text else 'empty'} caption for {a:g}-{b:g}s")
        return {
            "video_id": vid,
            "video": str(video),
            "duration": duration,
            "captions": captions,
            "dropped": dropped,
            "untimed": 0,
            "ledger": ledger.to_dict(),
        }
