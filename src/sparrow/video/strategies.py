"""Which frames to take: ``Uniform``, ``Fps`` and Apollo's ``Clips``, planned on a ``Timeline``.

Planning needs only the frames' presentation times, so every backend samples the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sparrow.video.errors import BadSegment
from sparrow.video.timeline import Timeline


def _check_rate_and_counts(strategy: str, fps: float, **counts: int) -> None:
    """``fps`` a positive finite number and every count at least 1."""
    if not fps > 0 or not math.isfinite(fps):
        raise ValueError(f"{strategy}(fps) must be a positive number, got {fps!r}")
    if any(n < 1 for n in counts.values()):
        raise ValueError(f"{strategy} needs " + " and ".join(f"{k} >= 1" for k in counts))


@dataclass(frozen=True)
class Uniform:
    """``n`` frames evenly spread over the segment: the frames shown at the middles of ``n`` equal parts.
    Always ``n`` frames; a segment with fewer frames repeats some."""

    n: int

    def __post_init__(self) -> None:
        if int(self.n) != self.n or self.n < 1:
            raise ValueError(f"Uniform(n) needs n >= 1, got {self.n!r}")


@dataclass(frozen=True)
class Fps:
    """The frames shown at times start, start + 1/fps, start + 2/fps, ... (a frame shown at several of
    these times is taken once). Fewer than ``min_frames``: ``min_frames`` spread uniformly instead. More
    than ``max_frames``: evenly thinned to ``max_frames``. The count is rounded to a multiple of
    ``multiple_of`` (down by thinning, or up by repeating the last frame when the segment has too few)."""

    fps: float
    min_frames: int = 1
    max_frames: int | None = None
    multiple_of: int = 1

    def __post_init__(self) -> None:
        _check_rate_and_counts("Fps", self.fps, min_frames=self.min_frames, multiple_of=self.multiple_of)
        if self.max_frames is not None:
            if self.max_frames < self.min_frames:
                raise ValueError(f"Fps max_frames ({self.max_frames}) < min_frames ({self.min_frames})")
            lo = -(-self.min_frames // self.multiple_of) * self.multiple_of
            if lo > self.max_frames:
                raise ValueError(
                    f"no multiple of {self.multiple_of} lies in [min_frames={self.min_frames}, "
                    f"max_frames={self.max_frames}]"
                )


@dataclass(frozen=True)
class Clips:
    """Apollo's clips: groups of ``frames_per_clip`` frames at ``fps``, tiling the segment from its
    start. When more than ``max_clips`` would be needed, ``max_clips`` clips are spread evenly (each
    centred in an equal part of the segment) and the in-clip fps is kept."""

    fps: float
    frames_per_clip: int = 4
    max_clips: int = 25

    def __post_init__(self) -> None:
        _check_rate_and_counts(
            "Clips", self.fps, frames_per_clip=self.frames_per_clip, max_clips=self.max_clips
        )


Strategy = Uniform | Fps | Clips


@dataclass
class Plan:
    indices: list[int]
    clip_spans: list[tuple[float, float]] | None = None
    frames_per_clip: int | None = None


def segment(tl: Timeline, start: float | None, end: float | None, path: object = "") -> tuple[float, float]:
    """The [start, end) seconds to sample, validated; ``end`` is clamped to the video's end."""
    dur = tl.duration
    s = 0.0 if start is None else float(start)
    e = dur if end is None else min(float(end), dur)
    if not (math.isfinite(s) and math.isfinite(e)):
        raise BadSegment(path, f"start/end must be finite numbers, got {start!r}, {end!r}")
    if s < 0:
        raise BadSegment(path, f"start ({s:g} s) is negative; times are seconds from the first frame")
    if s >= dur:
        raise BadSegment(path, f"start ({s:g} s) is at or after the end of the video ({dur:.3f} s)")
    if e <= s:
        raise BadSegment(path, f"end ({e:g} s) must be after start ({s:g} s)")
    return s, e


def _middles(n_items: int, n: int) -> np.ndarray:
    """Positions of the middles of ``n`` equal parts of ``range(n_items)``."""
    return np.floor((np.arange(n) + 0.5) * n_items / n).astype(np.int64)


def plan(strategy: Strategy, tl: Timeline, start: float | None, end: float | None, path: object = "") -> Plan:
    """Frame indices (presentation order, repeats possible) for a strategy on a segment."""
    s, e = segment(tl, start, end, path)
    if isinstance(strategy, Uniform):
        t = s + (np.arange(strategy.n) + 0.5) * (e - s) / strategy.n
        return Plan(indices=tl.frame_at(t).tolist())
    if isinstance(strategy, Fps):
        return Plan(indices=_plan_fps(strategy, tl, s, e))
    if isinstance(strategy, Clips):
        return _plan_clips(strategy, tl, s, e)
    raise TypeError(f"unknown sampling strategy {strategy!r}; use Uniform, Fps or Clips")


def _last_before(tl: Timeline, e: float) -> int:
    """The last frame shown before ``e`` (a target at or past the segment end maps here)."""
    i = int(np.searchsorted(tl.times, e - 1e-9, side="left")) - 1
    return min(max(i, 0), len(tl) - 1)


def _plan_fps(st: Fps, tl: Timeline, s: float, e: float) -> list[int]:
    n_targets = max(1, math.ceil((e - s) * st.fps - 1e-9))
    t = s + np.arange(n_targets) / st.fps
    idx = np.unique(tl.frame_at(t))  # monotonic targets: unique keeps presentation order
    if len(idx) < st.min_frames:
        t = s + (np.arange(st.min_frames) + 0.5) * (e - s) / st.min_frames
        idx = tl.frame_at(t)
    if st.max_frames is not None and len(idx) > st.max_frames:
        idx = idx[_middles(len(idx), st.max_frames)]
    m = st.multiple_of
    if len(idx) % m:
        down = len(idx) // m * m
        if down >= max(st.min_frames, m):
            idx = idx[_middles(len(idx), down)]
        else:  # too few frames in the segment: repeat the last one (as Qwen2-VL pads)
            up = -(-len(idx) // m) * m
            idx = np.concatenate([idx, np.full(up - len(idx), idx[-1])])
    return idx.tolist()


def _plan_clips(st: Clips, tl: Timeline, s: float, e: float) -> Plan:
    clip_len = st.frames_per_clip / st.fps
    needed = max(1, math.ceil((e - s) / clip_len - 1e-9))
    if needed <= st.max_clips:
        starts = s + np.arange(needed) * clip_len
    else:  # keep the in-clip fps; spread the clips, each centred in an equal part of the segment
        part = (e - s) / st.max_clips
        starts = s + (np.arange(st.max_clips) + 0.5) * part - clip_len / 2
    t = starts[:, None] + np.arange(st.frames_per_clip)[None, :] / st.fps
    idx = tl.frame_at(t.ravel())
    past = t.ravel() >= e
    if past.any():  # the last clip sticks out of the segment: those targets take its last frame
        idx[past] = _last_before(tl, e)
    spans = [(float(a), float(min(a + clip_len, e))) for a in starts]
    return Plan(indices=idx.tolist(), clip_spans=spans, frames_per_clip=st.frames_per_clip)
