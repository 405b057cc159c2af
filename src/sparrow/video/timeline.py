"""A video's frames in presentation order: their timestamps, keyframes and "the frame shown at t".

Built from packet timestamps (no decoding): sorting the packets' presentation timestamps gives the
presentation order, whatever the codec's decode order (B-frames) and whatever the frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# Targets this close before a frame's start count as at its start: s + k/f computed in floats can land
# a hair before a boundary it is meant to hit exactly (e.g. 1/3 s at 30 fps).
EPS = 1e-6
STORED_TICKS = 10**9  # time base of a timeline built from stored frame times (nanoseconds)


@dataclass
class Timeline:
    """``pts``: sorted presentation timestamps (stream time base units), one per frame. ``end_pts``: when
    the last frame stops being shown. ``key_indices``: presentation indices of keyframes (seek points)."""

    pts: np.ndarray
    time_base: Fraction
    end_pts: int
    key_indices: np.ndarray
    times: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rel = (self.pts - self.pts[0]) * self.time_base.numerator
        # Exact integer product, one rounding in the division: equals float(Fraction(...)).
        self.times = rel.astype(np.float64) / self.time_base.denominator

    @classmethod
    def from_packets(
        cls,
        pts: list[int],
        durations: list[int],
        keyframes: list[bool],
        time_base: Fraction,
        default_duration: int,
    ) -> Timeline:
        """Build from one entry per packet, in any order. Duplicate timestamps (broken muxers) collapse
        to one frame, as a decoder would output them."""
        if not pts:
            raise ValueError("no frames")
        p = np.asarray(pts, dtype=np.int64)
        order = np.argsort(p, kind="stable")
        p = p[order]
        keep = np.ones(len(p), dtype=bool)
        keep[1:] = p[1:] != p[:-1]
        d = np.asarray(durations, dtype=np.int64)[order][keep]
        k = np.asarray(keyframes, dtype=bool)[order][keep]
        p = p[keep]
        last = int(d[-1]) if d[-1] > 0 else 0
        if last <= 0:
            last = int(np.median(np.diff(p))) if len(p) > 1 else max(int(default_duration), 1)
        return cls(pts=p, time_base=time_base, end_pts=int(p[-1]) + last, key_indices=np.flatnonzero(k))

    @classmethod
    def constant(cls, num_frames: int, fps: Fraction) -> Timeline:
        """An evenly spaced timeline, for streams whose packets carry no timestamps."""
        tb = 1 / Fraction(fps)
        return cls(
            pts=np.arange(num_frames, dtype=np.int64),
            time_base=tb,
            end_pts=num_frames,
            key_indices=np.zeros(1, dtype=np.int64),
        )

    @classmethod
    def from_times(cls, times: list[float], end: float | None = None) -> Timeline:
        """A timeline of stored frames from their times in seconds (increasing), e.g. ``sparrow frames``
        output. ``end`` is when the last frame stops being shown (the video's duration, which the
        manifest records); without it the last frame lasts the median step, as for a video whose
        packets carry no durations (a single frame lasts one tick)."""
        if not len(times):
            raise ValueError("no frames")
        t = np.asarray(times, dtype=np.float64)
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise ValueError("frame timestamps must be finite and strictly increasing")
        # Nanosecond ticks: far below EPS, so "the frame shown at t" is the same as on the video's own
        # time base.
        pts = np.round((t - t[0]) * STORED_TICKS).astype(np.int64)
        last = int(np.median(np.diff(pts))) if len(pts) > 1 else 1
        if end is not None:
            last = int(round((end - t[0]) * STORED_TICKS)) - int(pts[-1])
            if last <= 0:
                raise ValueError("the end of stored frames must come after the last frame")
        return cls(
            pts=pts,
            time_base=Fraction(1, STORED_TICKS),
            end_pts=int(pts[-1]) + last,
            key_indices=np.zeros(1, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def duration(self) -> float:
        return float((self.end_pts - int(self.pts[0])) * self.time_base)

    @property
    def start_time(self) -> float:
        return float(int(self.pts[0]) * self.time_base)

    def frame_at(self, t: float | np.ndarray) -> np.ndarray:
        """Index of the frame whose presentation interval [t_i, t_{i+1}) contains ``t`` (clamped to the
        first and last frame)."""
        i = np.searchsorted(self.times, np.asarray(t, dtype=np.float64) + EPS, side="right") - 1
        return np.clip(i, 0, len(self.pts) - 1)

    def key_for(self, index: int) -> int:
        """Presentation index of the keyframe decoding must start from to reach frame ``index``: the last
        keyframe shown at or before it (0 when there is none: start from the beginning)."""
        j = int(np.searchsorted(self.key_indices, index, side="right")) - 1
        return int(self.key_indices[j]) if j >= 0 else 0

    @property
    def variable_fps(self) -> bool:
        """Frame durations differ by more than rounding (one tick, or 2 % of the typical duration)."""
        if len(self.pts) < 3:
            return False
        d = np.diff(self.pts)
        m = float(np.median(d))
        return bool(np.any(np.abs(d - m) > max(1.0, 0.02 * m)))

    @property
    def avg_fps(self) -> float:
        return len(self.pts) / self.duration if self.duration > 0 else 0.0
