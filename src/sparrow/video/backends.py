"""What the optional decoders (torchcodec, decord) share: the request they are given, the error that
sends ``sample`` back to PyAV, and the check that they see the stream as Sparrow's packet scan does."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sparrow.video.sizing import Size
from sparrow.video.timeline import Timeline


class BackendMismatch(RuntimeError):
    """A backend returned frames other than the ones asked for (or failed to decode)."""


@dataclass(frozen=True)
class DecodeRequest:
    """The frames ``wanted`` (timeline indices, sorted) of the video at ``path``, at ``size`` in display
    orientation; ``rotation`` and ``display_hw`` come from the header, ``threads`` 0 lets FFmpeg decide."""

    path: Path
    tl: Timeline
    wanted: list[int]
    size: Size
    rotation: int
    display_hw: tuple[int, int]
    threads: int = 0

    def check_frame_count(self, backend: str, n: int) -> None:
        """Indices mean the same on every backend only if ``backend`` counts the frames the scan found."""
        if n != len(self.tl):
            raise BackendMismatch(f"{backend} counts {n} frames, the stream has {len(self.tl)}")


@functools.cache
def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # not only ImportError: torchcodec fails otherwise when FFmpeg's libraries are missing
        return False
    return True


@contextmanager
def mismatch_on_failure(backend: str) -> Iterator[None]:
    """Any failure inside becomes a ``BackendMismatch`` naming ``backend`` and the error's first line."""
    try:
        yield
    except BackendMismatch:
        raise
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BackendMismatch(f"{backend} failed: {reason}") from e
