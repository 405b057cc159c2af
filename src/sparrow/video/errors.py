"""The ``VideoError`` family: every failure names the file and the cause in one line."""

from __future__ import annotations


class VideoError(Exception):
    """A video cannot be probed or sampled. ``path`` is the file; the message says why."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VideoNotFound(VideoError, FileNotFoundError):
    """The path does not exist or is not a file."""


class NoVideoStream(VideoError):
    """The file opens but holds no video stream (audio only, subtitles, cover art only)."""


class VideoDecodeError(VideoError):
    """The file is not a readable video, is truncated, or a frame cannot be decoded."""


class EmptyVideo(VideoError):
    """The video stream holds no frames (or none in the requested segment)."""


class BadSegment(VideoError, ValueError):
    """``start`` / ``end`` do not describe a part of the video."""
