"""``sparrow refine`` as one more stage of ``sparrow.jobs``: one item per video.

A worker sets up the backend (behind the response cache), the template and the examples once; per
video it checks that the video is there and readable, optionally has its frames described, sends one
request per transcript block, parses the replies and returns the video's captions with its ledger
(calls, tokens, seconds, cache hits) and the captions it dropped. A request that still fails after the
backend's retries fails the video (one line in ``errors.jsonl``); its successful blocks are cached,
so a re-run pays only for the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sparrow.jobs import Collector, ItemResult, Stage, WorkItem
from sparrow.refine.backends.base import Backend, Message, Request, Response, VideoRef
from sparrow.refine.blocks import Block, make_blocks
from sparrow.refine.captions import Line, Transcript, read_entries
from sparrow.refine.collect import RefineCollector
from sparrow.refine.config import RefineConfig, build_backend
from sparrow.refine.errors import RefineError
from sparrow.refine.frames import FrameConfig, describe_frames, video_frames
from sparrow.refine.ledger import Ledger
from sparrow.refine.metrics import TrinityConfig
from sparrow.refine.parse import parse_reply
from sparrow.refine.prompts import Example, FrameNote, PromptTemplate, load_examples

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")


def find_video(videos: Path, video_id: str) -> Path | None:
    for suffix in VIDEO_SUFFIXES:
        p = videos / f"{video_id}{suffix}"
        if p.is_file():
            return p
    return None


class RefineStage(Stage):
    name = "refine"
    unit = "captions"

    def __init__(
        self,
        transcripts: str | os.PathLike,
        videos: str | os.PathLike,
        out: str | os.PathLike,
        cfg: RefineConfig,
        limit: int | None = None,
        records: str | os.PathLike | None = None,
        reference: str | os.PathLike | None = None,
        trinity: TrinityConfig | None = None,
    ):
        self.transcripts, self.videos, self.out = Path(transcripts), Path(videos), Path(out)
        self.cfg, self.limit = cfg, limit
        self.records = Path(records) if records else self.out / "captions.jsonl"
        self.reference = Path(reference) if reference else None
        self.trinity = trinity or TrinityConfig()
        self.cache_dir = cfg.cache or str(self.out / "cache")
        entries = read_entries(self.transcripts)
        self._entries = entries[:limit] if limit is not None else entries
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
            "transcripts": str(self.transcripts.resolve()),
        }

    def total(self) -> int:
        return len(self._entries)

    def items(self) -> Iterator[WorkItem]:
        for t in self._entries:
            if isinstance(t, dict):
                yield WorkItem(key=f"bad/{t['id']}", id=t["id"], source=t["source"], error=t["reason"])
                continue
            payload = {"video_id": t.video_id, "lines": [[x.start, x.end, x.text] for x in t.lines]}
            yield WorkItem(key=t.video_id, payload=payload, id=t.video_id, source=str(self.transcripts))

    def setup(self) -> None:
        self._template = PromptTemplate.load(self.cfg.template)
        self._describe = PromptTemplate.load("describe")
        self._examples: list[Example] = load_examples(self.cfg.examples) if self.cfg.examples else []
        self._backend = build_backend(self.cfg, self.cache_dir)

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        from sparrow.video import probe

        vid = payload["video_id"]
        video = find_video(self.videos, vid)
        if video is None:
            raise RefineError(f"no video for {vid} in {self.videos}")
        duration = probe(video).duration  # an unreadable video fails here, before any call is paid for
        transcript = Transcript(vid, tuple(Line(*x) for x in payload["lines"]))
        ledger = Ledger()
        frames = self._frames(video, ledger) if self.cfg.describe_frames else []
        blocks = make_blocks(transcript, self.cfg.max_words)
        sampling = self.cfg.sampling()
        requests = [
            Request(self._messages(b, frames, video), sampling, self.cfg.seed, self._template.version)
            for b in blocks
        ]
        responses = self._complete(requests, ledger)
        captions, dropped, untimed = [], [], 0
        for block, resp in zip(blocks, responses, strict=True):
            parsed = parse_reply(resp.text, block, self.cfg.caption_seconds)
            captions += parsed.captions
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
            "untimed": untimed,
            "ledger": ledger.to_dict(),
        }

    def _messages(self, block: Block, frames: list[FrameNote], video: Path) -> tuple[Message, ...]:
        msgs = self._template.messages(block, frames, self._examples)
        if not self.cfg.see_video:
            return msgs
        lo, hi = block.window
        last = replace(msgs[-1], video=VideoRef(str(video), float(lo), float(max(hi, lo + 1))))
        return (*msgs[:-1], last)

    def _complete(self, requests: list[Request], ledger: Ledger) -> list[Response]:
        assert self._backend is not None, "setup() not called"
        responses = self._backend.complete(requests)
        for r in responses:
            ledger.add(r)
        failed = [r.error for r in responses if r.error]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(requests)} requests failed: {failed[0]}")
        return responses

    def _frames(self, video: Path, ledger: Ledger) -> list[FrameNote]:
        assert self._backend is not None, "setup() not called"
        shots = video_frames(video, FrameConfig(every=self.cfg.frame_every), threads=1)
        notes, errors = describe_frames(
            self._backend, self._describe, shots, self.cfg.sampling(), self.cfg.seed
        )
        ledger.frame_errors += len(errors)
        return notes

    def collector(self, out: Path) -> Collector:
        return RefineCollector(
            out, self.records, self.reference, self.trinity, self.fingerprint(), ids=self._ids()
        )

    def _ids(self) -> list[str]:
        return [t["id"] if isinstance(t, dict) else t.video_id for t in self._entries]

    def reusable(self, item: WorkItem, result: ItemResult) -> bool:
        return not result.ok or Path((result.value or {}).get("video", "")).is_file()

    def discard(self, out: Path) -> None:
        for name in ("caption.json", "ledger.json", "dropped.jsonl", "trinity.json"):
            (out / name).unlink(missing_ok=True)
        if self.records.parent == out:
            self.records.unlink(missing_ok=True)
