"""The one frame selector: sampling settings -> strategy -> chosen frames.

A decoded video and a stored frame list with timestamps (``sparrow frames`` output) go through the same
``plan`` on a ``Timeline``, so a model trained on stored frames sees the frames it is shown when it is
evaluated on the videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sparrow.video.strategies import Clips, Fps, Strategy, Uniform, plan
from sparrow.video.timeline import Timeline


class SamplingSettings(Protocol):
    """What the selector reads from a sampling config (``sparrow.model.SamplingConfig`` has these)."""

    strategy: str
    fps: float
    num_frames: int
    min_frames: int
    max_frames: int | None
    frames_per_clip: int
    max_clips: int


def strategy_for(s: SamplingSettings, per_clip: bool = False) -> Strategy:
    """The strategy a sampling config names. ``per_clip``: frames are grouped ``frames_per_clip`` to a
    token group, so an ``fps`` count is rounded to a multiple of it."""
    if s.strategy == "uniform":
        return Uniform(s.num_frames)
    if s.strategy == "clips":
        return Clips(s.fps, frames_per_clip=s.frames_per_clip, max_clips=s.max_clips)
    if s.strategy == "fps":
        return Fps(
            s.fps,
            min_frames=s.min_frames,
            max_frames=s.max_frames,
            multiple_of=s.frames_per_clip if per_clip else 1,
        )
    raise ValueError(f"unknown sampling strategy {s.strategy!r}; use fps, uniform or clips")


@dataclass
class Selection:
    """Frames chosen from a stored list: ``indices`` into the list (repeats possible, as from a video),
    their ``timestamps`` (seconds from the first stored frame), ``clip_spans`` for ``Clips``, and the
    list's ``duration``."""

    indices: list[int]
    timestamps: list[float]
    clip_spans: list[tuple[float, float]] | None
    duration: float


def select_stored(strategy: Strategy, timestamps: list[float], end: float | None = None) -> Selection:
    """Apply ``strategy`` to stored frames with these times (seconds, increasing) and, if known, the
    time the last one ends, exactly as ``sample`` applies it to a video's frames."""
    tl = Timeline.from_times(timestamps, end)
    p = plan(strategy, tl, None, None)
    return Selection(
        indices=p.indices,
        timestamps=[float(tl.times[i]) for i in p.indices],
        clip_spans=p.clip_spans,
        duration=tl.duration,
    )
