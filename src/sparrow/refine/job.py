"""``sparrow refine`` as one more stage of ``sparrow.jobs``: one item per video.

A worker sets up the backend (behind the response cache), the template and the examples once; per
video it checks that the video is there and readable, optionally has its frames described, sends one
request per transcript block, parses the replies and returns the video's captions with its ledger
(calls, tokens, seconds, cache hits, failed requests) and the captions it dropped (outside their
block, repeated, or past the video's end). A request that still fails after the backend's retries
costs only its block: the video keeps its other captions, the failure is a row of ``dropped.jsonl``,
and a re-run retries that video (its successful blocks come from the cache, so it pays only for the
rest).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sparrow.captions import Line, Transcript
from sparrow.chat.base import Backend, Message, Request, VideoRef
from sparrow.jobs import ItemResult, WorkItem
from sparrow.refine.blocks import Block, make_blocks
from sparrow.refine.caption_stage import CaptionJob, CaptionStage
from sparrow.refine.config import RefineConfig, build_backend
from sparrow.refine.frames import FrameConfig, describe_frames, video_frames
from sparrow.refine.ledger import Ledger
from sparrow.refine.parse import parse_reply
from sparrow.refine.prompts import Example, FrameNote, PromptTemplate, load_examples, nearest_examples


class RefineStage(CaptionStage):
    name = "refine"

    def __init__(self, job: CaptionJob, cfg: RefineConfig):
        super().__init__(job)
        self.cfg = cfg
        self.cache_dir = cfg.cache or str(self.out / "cache")
        self._backend: Backend | None = None

    def fingerprint(self) -> dict[str, Any]:
        template = PromptTemplate.load(self.cfg.template)
        settings = {
            k: v
            for k, v in asdict(self.cfg).items()
            if k not in ("concurrency", "timeout", "retries", "cache")
        }
        return {
            **settings,
            "template_version": template.version,
            "transcripts": str(self.captions.resolve()),
        }

    def setup(self) -> None:
        self._template = PromptTemplate.load(self.cfg.template)
        self._describe = PromptTemplate.load("describe")
        self._examples: list[Example] = load_examples(self.cfg.examples) if self.cfg.examples else []
        self._backend = build_backend(self.cfg, self.cache_dir)

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        vid = payload["video_id"]
        video, duration = self.video(vid)  # an unreadable video fails here, before any call is paid for
        transcript = Transcript(vid, tuple(Line(*x) for x in payload["lines"]))
        ledger = Ledger()
        frames = self._frames(video, ledger) if self.cfg.describe_frames else []
        blocks = make_blocks(transcript, self.cfg.max_words)
        decoding = self.cfg.decoding()
        requests = [
            Request(self._messages(b, frames, video), decoding, self.cfg.seed, self._template.version)
            for b in blocks
        ]
        assert self._backend is not None, "setup() not called"
        responses = self._backend.complete(requests)
        captions, dropped, untimed, failed = [], [], 0, []
        for block, resp in zip(blocks, responses, strict=True):
            ledger.add(resp)
            if resp.error is not None:  # the other blocks' captions are kept; a re-run retries this one
                lo, hi = block.window
                failed.append(f"block {block.index} ({lo:g}-{hi:g}s): request failed: {resp.error}")
                continue
            parsed = parse_reply(resp.text, block, self.cfg.caption_seconds)
            for c in parsed.captions:
                if c.start < duration:
                    captions.append(c)
                else:
                    dropped.append(f"{c.start:g}s is past the video's end ({duration:g}s): {c.text[:60]}")
            dropped += parsed.dropped
            untimed += parsed.untimed
        captions.sort(key=lambda c: (c.start, c.end))
        return {
            "video_id": vid,
            "video": str(video),
            "duration": duration,
            "captions": [[c.start, c.end, c.text] for c in captions],
            "blocks": len(blocks),
            "frames": len(frames),
            "dropped": dropped,
            "failed_blocks": failed,
            "untimed": untimed,
            "ledger": ledger.to_dict(),
        }

    def reusable(self, item: WorkItem, result: ItemResult) -> bool:
        """A video whose requests partly failed is done again (its good blocks come from the cache)."""
        return super().reusable(item, result) and not (result.value or {}).get("failed_blocks")

    def _messages(self, block: Block, frames: list[FrameNote], video: Path) -> tuple[Message, ...]:
        examples = self._examples
        if self.cfg.nearest_examples:  # per block, the examples most like it
            examples = nearest_examples(examples, block.render(), self.cfg.nearest_examples)
        msgs = self._template.messages(block, frames, examples)
        if not self.cfg.see_video:
            return msgs
        lo, hi = block.window
        # An absolute path: a server (``sparrow serve``, vLLM) reads it from its own working directory.
        path = str(video.resolve())
        last = replace(msgs[-1], video=VideoRef(path, float(lo), float(max(hi, lo + 1))))
        return (*msgs[:-1], last)

    def _frames(self, video: Path, ledger: Ledger) -> list[FrameNote]:
        assert self._backend is not None, "setup() not called"
        shots = video_frames(video, FrameConfig(every=self.cfg.frame_every), threads=1)
        notes, errors = describe_frames(
            self._backend, self._describe, shots, self.cfg.decoding(), self.cfg.seed
        )
        ledger.frame_errors += len(errors)
        return notes
