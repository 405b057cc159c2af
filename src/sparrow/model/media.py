"""Media item -> frames, token groups and the text that introduces them; and the decoded-clip cache.

Frames come from ``sparrow.video`` for videos and for stored frame lists with timestamps alike (one
selector), from every listed file for synthetic frames (no timestamps: each carries text, none is
dropped), and from one file for an image. Times in the prompt are seconds from the start of what the
model sees.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sparrow import video as V
from sparrow.model.config import SamplingConfig
from sparrow.records import Media, RecordError, resolve_media_path


class ProcessorError(ValueError):
    """A sample cannot be turned into model inputs; the message is a one-line reason."""


class ClipCache:
    """An LRU of decoded clips, bounded by ``capacity`` clips and, if given, by ``max_bytes`` of frame
    data. ``capacity`` 0 disables it. Training keeps one per data worker for a stage (the recipe's
    ``clip_cache_mb``): every epoch after the first then reads its clips from memory, not the decoder."""

    def __init__(self, capacity: int = 256, max_bytes: int | None = None):
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._sizes: dict[tuple, int] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    @classmethod
    def of_megabytes(cls, mb: float) -> ClipCache:
        """A cache bounded by ``mb`` MiB of frames only (0: disabled), as training uses it."""
        return cls(1 << 30 if mb else 0, max_bytes=int(mb * 2**20))

    @staticmethod
    def key(path: Path, strategy: Any, size: int, start: float | None, end: float | None) -> tuple | None:
        """None for a file that cannot be stat'ed: not cached, the decoder then reports why."""
        try:
            st = path.stat()  # the file's version: a rewritten video is decoded again
        except OSError:
            return None
        return (str(path), st.st_mtime_ns, st.st_size, repr(strategy), size, start, end)

    def get(self, key: tuple | None) -> Any:
        if not self.capacity or key is None:
            return None
        clip = self._items.get(key)
        if clip is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return clip

    def put(self, key: tuple | None, clip: Any) -> None:
        if not self.capacity or key is None:
            return
        size = int(getattr(np.asarray(getattr(clip, "frames", ())), "nbytes", 0))
        if self.max_bytes is not None and size > self.max_bytes:
            return  # larger than the whole budget: caching it would only evict everything else
        if key in self._items:
            self.bytes -= self._sizes[key]
        self._items[key] = clip
        self._sizes[key] = size
        self.bytes += size
        self._items.move_to_end(key)
        while len(self._items) > self.capacity or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            old, _ = self._items.popitem(last=False)
            self.bytes -= self._sizes.pop(old)


@dataclass
class VisualBlock:
    """The frames of one media item and how they are introduced in the prompt. ``indices``: where each
    frame comes from (presentation index in the video, or position in the stored frame list)."""

    frames: np.ndarray  # (F, S, S, 3) uint8
    groups: list[int]  # frames per token group, in order
    prefixes: list[str]  # text before each group ("" = none)
    header: str = ""  # e.g. "The video lasts 00:37."
    timestamps: list[float] | None = None
    indices: list[int] | None = None


class MediaLoader:
    """Loads media items for one model: ``per_clip`` (one token group per clip of ``frames_per_clip``
    frames, else per frame), the clip cache and the decoder threads."""

    def __init__(self, per_clip: bool, clip_cache: ClipCache, decode_threads: int = 0):
        self.per_clip = per_clip
        self.clip_cache = clip_cache
        self.decode_threads = decode_threads

    def load(
        self, media: Media, root: str | os.PathLike, s: SamplingConfig, size: int, media_root: Any = None
    ) -> VisualBlock:
        """Frames (``size`` x ``size``), token groups and prompt text of one media item."""
        try:
            if media.type == "image":
                frame = load_image(resolve_media_path(root, media.path or "", media_root), size)
                return VisualBlock(frames=frame[None], groups=[1], prefixes=[""], indices=[0])
            if media.type == "frames" and media.timestamps is None:
                return self._synthetic(media, root, s, size, media_root)
            if media.type == "frames":
                return self._stored(media, root, s, size, media_root)
            return self._video(media, root, s, size, media_root)
        except RecordError as e:
            raise ProcessorError(str(e)) from e

    def groups(self, n: int, s: SamplingConfig) -> list[int]:
        if not self.per_clip:
            return [1] * n
        k = s.frames_per_clip
        return [min(k, n - i) for i in range(0, n, k)]

    def _video(self, media: Media, root: Any, s: SamplingConfig, size: int, media_root: Any) -> VisualBlock:
        path = resolve_media_path(root, media.path or "", media_root)
        strategy = V.strategy_for(s, self.per_clip)
        key = self.clip_cache.key(path, strategy, size, media.start, media.end)
        clip = self.clip_cache.get(key)
        if clip is None:
            try:
                clip = V.sample(
                    path,
                    strategy,
                    size=(size, size),
                    start=media.start,
                    end=media.end,
                    threads=self.decode_threads,
                )
            except V.VideoError as e:
                raise ProcessorError(str(e)) from e
            self.clip_cache.put(key, clip)
        frames = np.asarray(clip.frames)
        if frames.ndim != 4 or not len(frames):
            raise ProcessorError(f"{media.path}: no frames sampled")
        offset = media.start or 0.0  # times relative to the segment the model sees
        ts = [t - offset for t in clip.timestamps]
        end = clip.info.duration if media.end is None else min(media.end, clip.info.duration)
        duration = max(end - offset, ts[-1] if ts else 0.0)
        spans = None if clip.clip_spans is None else [(a - offset, b - offset) for a, b in clip.clip_spans]
        return self._timed_block(frames, ts, list(clip.indices), duration, spans, s)

    def _stored(self, media: Media, root: Any, s: SamplingConfig, size: int, media_root: Any) -> VisualBlock:
        paths = list(media.paths or [])
        try:
            chosen = V.select_stored(
                V.strategy_for(s, self.per_clip), list(media.timestamps or []), media.end
            )
        except ValueError as e:
            raise ProcessorError(f"stored frames starting {paths[0]!r}: {e}") from None
        loaded: dict[int, np.ndarray] = {}
        for i in chosen.indices:  # a frame chosen twice is read once
            if i not in loaded:
                loaded[i] = load_image(resolve_media_path(root, paths[i], media_root), size)
        frames = np.stack([loaded[i] for i in chosen.indices])
        return self._timed_block(
            frames, chosen.timestamps, chosen.indices, chosen.duration, chosen.clip_spans, s
        )

    def _synthetic(
        self, media: Media, root: Any, s: SamplingConfig, size: int, media_root: Any
    ) -> VisualBlock:
        # Synthetic pseudo-video: every frame carries text, so none is dropped (as Sparrow does).
        paths = list(media.paths or [])
        if s.max_frames is not None and len(paths) > s.max_frames:
            raise ProcessorError(f"synthetic sample has {len(paths)} frames, over max_frames {s.max_frames}")
        frames = np.stack([load_image(resolve_media_path(root, p, media_root), size) for p in paths])
        groups = self.groups(len(paths), s)
        return VisualBlock(
            frames=frames,
            groups=groups,
            prefixes=ordinal_prefixes(groups, s),
            indices=list(range(len(paths))),
        )

    def _timed_block(
        self,
        frames: np.ndarray,
        ts: list[float],
        indices: list[int],
        duration: float,
        spans: list[tuple[float, float]] | None,
        s: SamplingConfig,
    ) -> VisualBlock:
        groups = self.groups(len(frames), s)
        if not self.per_clip or spans is None or len(spans) != len(groups):
            spans = None  # clip spans name token groups only when each clip is one group
        return VisualBlock(
            frames=frames,
            groups=groups,
            prefixes=timed_prefixes(ts, groups, duration, s, spans),
            header=V.video_header(duration) if s.header else "",
            timestamps=ts,
            indices=indices,
        )


def timed_prefixes(
    ts: list[float],
    groups: list[int],
    duration: float,
    s: SamplingConfig,
    spans: list[tuple[float, float]] | None,
) -> list[str]:
    """``clip from MM:SS-MM:SS:`` (apollo) or ``Frame from MM:SS:`` (frame) before each token group."""
    if s.timestamps == "none":
        return [""] * len(groups)
    firsts = np.cumsum([0] + groups[:-1]).tolist()
    out = []
    for g, first in enumerate(firsts):
        if s.timestamps == "frame":
            out.append(V.frame_prefix(ts[first]))
            continue
        if spans is not None:
            a, b = spans[g]
        else:
            # A group covers the time from its first frame to the next group's first frame.
            a = ts[first]
            b = ts[firsts[g + 1]] if g + 1 < len(firsts) else max(duration, a)
        out.append(V.clip_prefix(a, b))
    return out


def ordinal_prefixes(groups: list[int], s: SamplingConfig) -> list[str]:
    """``Frame 3:`` / ``Frames 1-4:`` for frames that have no time."""
    if s.timestamps == "none":
        return [""] * len(groups)
    out, first = [], 1
    for n in groups:
        out.append(f"Frame {first}:" if n == 1 else f"Frames {first}-{first + n - 1}:")
        first += n
    return out


def load_image(path: Path, size: int) -> np.ndarray:
    """An RGB image file as a (size, size, 3) uint8 array (bicubic resize when it is another size)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise ProcessorError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ProcessorError(f"cannot read image {path}: {e}") from None
