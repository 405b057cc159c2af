"""What ``probe`` reports about a video and what ``sample`` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# File endings taken for videos when a folder is searched or a video id is looked up, commonest first.
VIDEO_SUFFIXES = (
    ".mp4",
    ".mkv",
    ".webm",
    ".mov",
    ".avi",
    ".m4v",
    ".ts",
    ".flv",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".3gp",
)


@dataclass
class VideoInfo:
    """A video stream as a player shows it.

    ``width`` / ``height`` are after rotation. ``rotation`` is the clockwise angle (0/90/180/270) a player
    turns the stored picture by. ``start_time`` is the stream's first presentation timestamp in seconds;
    every other time Sparrow reports is relative to the first frame (which is 0.0). ``duration`` runs from
    the first frame's start to the last frame's end. ``num_frames_exact`` is False when the count is an
    estimate from the header (duration x rate) rather than a count of the stream's packets.
    """

    path: str
    duration: float
    fps: float
    num_frames: int
    num_frames_exact: bool
    width: int
    height: int
    rotation: int
    codec: str
    start_time: float
    variable_fps: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Clip:
    """Sampled frames with where they come from.

    ``frames``: uint8 (T, H, W, 3) RGB. ``indices[k]``: position of frame k in presentation order (0-based).
    ``timestamps[k]``: its presentation time in seconds from the first frame. With the ``Clips`` strategy
    the frames are ``len(clip_spans)`` groups of ``frames_per_clip`` and ``clip_spans`` holds each group's
    (start_s, end_s). ``partial`` is True when the file was damaged and ``allow_partial`` let the frames
    that could be decoded through.
    """

    frames: np.ndarray
    timestamps: list[float]
    indices: list[int]
    info: VideoInfo
    clip_spans: list[tuple[float, float]] | None = None
    frames_per_clip: int | None = None
    partial: bool = False

    def __len__(self) -> int:
        return len(self.indices)
