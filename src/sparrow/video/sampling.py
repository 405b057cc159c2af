"""``probe`` and ``sample``: the two entry points, and backend selection."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np

from sparrow.video import backend_decord, backend_torchcodec
from sparrow.video.backend_pyav import PyAVReader, Scan
from sparrow.video.backends import BackendMismatch, DecodeRequest
from sparrow.video.errors import EmptyVideo, VideoDecodeError
from sparrow.video.info import Clip, VideoInfo
from sparrow.video.sizing import Size, check_size
from sparrow.video.strategies import Clips, Fps, Plan, Strategy, Uniform, plan

BACKENDS = ("auto", "pyav", "torchcodec", "decord")
_OTHERS = {"torchcodec": backend_torchcodec, "decord": backend_decord}


def available_backends() -> list[str]:
    """Backends usable here, best first (``backend="auto"`` picks the first)."""
    names = ["pyav"]
    if backend_torchcodec.available():
        names.append("torchcodec")
    if backend_decord.available():
        names.append("decord")
    return names


def resolve_backend(backend: str) -> str:
    """``auto`` -> PyAV, always installed and the fastest here: Sparrow's sparse decoder (skip non-reference
    frames, convert only returned ones) uses 1.2-1.4x less CPU than torchcodec's or decord's batch reads
    for the same frames (``benchmarks/bench_video.py``). torchcodec and decord are used when asked for."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "auto":
        return "pyav"  # without probing the others: importing torchcodec loads torch (seconds, 300 MB)
    if backend in _OTHERS and not _OTHERS[backend].available():
        raise ValueError(f"video backend {backend!r} is not installed (pip install {backend})")
    return backend


def probe(path: str | os.PathLike, exact: bool = False) -> VideoInfo:
    """Describe a video from its header (and its first frame, for rotation).

    ``exact=True`` also reads every packet's timestamp (no decoding) so ``num_frames``, ``duration`` and
    ``variable_fps`` are exact rather than the header's word; ``sample`` always does this."""
    with PyAVReader(path) as r:
        tl = None
        if exact:
            scan = r.scan()
            if scan.timeline is None:
                raise EmptyVideo(path, "the video stream has no frames")
            tl = scan.timeline
        r.read_rotation()
        return r.header_info(tl)


class SampleOptions(TypedDict, total=False):
    """The keyword arguments ``sample`` and ``open_sample`` share.

    ``size``: None (native), an int (shorter side, aspect kept) or (height, width); sizes are in display
    orientation (after rotation). ``start`` / ``end``: the segment to sample, seconds from the first
    frame. ``allow_partial``: on a truncated or damaged file, return the frames that can be decoded
    (``partial`` is then True) instead of raising ``VideoDecodeError``. ``threads``: decoder threads
    (0 = FFmpeg decides; use 1 when many videos are decoded in parallel processes)."""

    size: int | tuple[int, int] | None
    start: float | None
    end: float | None
    allow_partial: bool
    threads: int


@dataclass
class _Opened:
    """A video opened for sampling (the caller closes ``reader``): its packet scan, the planned frames,
    whether the file is truncated, and the options with their defaults."""

    reader: PyAVReader
    scan: Scan
    plan: Plan
    partial: bool
    size: Size
    allow_partial: bool
    threads: int


def _open(path: str | os.PathLike, strategy: Strategy, options: SampleOptions) -> _Opened:
    """Check the options, open the video, scan its packets and plan the frames; a truncated file is an
    error unless ``allow_partial``."""
    unknown = options.keys() - SampleOptions.__optional_keys__
    if unknown:  # a TypedDict is not checked at run time; a misspelt option must not pass silently
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if not isinstance(strategy, (Uniform, Fps, Clips)):
        raise TypeError(f"strategy must be Uniform, Fps or Clips, got {type(strategy).__name__}")
    size = check_size(options.get("size"))
    allow_partial, threads = options.get("allow_partial", False), options.get("threads", 0)
    path = Path(path)
    reader = PyAVReader(path, threads=threads)
    try:
        scan = reader.scan()
        if scan.timeline is None:
            raise EmptyVideo(path, "the video stream has no frames")
        if scan.truncated and not allow_partial:
            raise VideoDecodeError(path, f"file is truncated or damaged: {scan.truncated}")
        p = plan(strategy, scan.timeline, options.get("start"), options.get("end"), path)
    except BaseException:
        reader.close()
        raise
    return _Opened(reader, scan, p, bool(scan.truncated), size, allow_partial, threads)


def sample(
    path: str | os.PathLike, strategy: Strategy, *, backend: str = "auto", **options: Unpack[SampleOptions]
) -> Clip:
    """Sample frames from a video.

    ``strategy``: ``Uniform(n)``, ``Fps(fps, ...)`` or ``Clips(fps, ...)``; ``backend``: ``auto``,
    ``pyav``, ``torchcodec`` or ``decord``; ``options``: see :class:`SampleOptions`.
    """
    name = resolve_backend(backend)
    o = _open(path, strategy, options)
    path = o.reader.path
    with o.reader as r:
        tl = o.scan.timeline
        wanted = sorted(set(o.plan.indices))
        frames: dict[int, np.ndarray] | None = None
        if name != "pyav" and not o.scan.sequential:
            rotation = r.read_rotation()
            info = r.header_info(tl)
            try:
                req = DecodeRequest(path, tl, wanted, o.size, rotation, (info.height, info.width), o.threads)
                frames = _OTHERS[name].decode(req)
            except BackendMismatch as e:
                if backend != "auto":
                    raise VideoDecodeError(path, str(e)) from None
                frames = None  # auto: PyAV decodes it instead
        if frames is not None:
            arr, got = _fill(path, o.plan.indices, frames.items())
            failure = None
        else:
            decoded = r.iter_decode(tl, wanted, o.size, o.allow_partial, o.scan.sequential)
            arr, got = _fill(path, o.plan.indices, decoded)
            failure = r.failure
        info = r.header_info(tl)
    return _assemble(path, o.plan, tl, arr, got, failure, o.partial, info)


class SampleStream:
    """A sample decoded one frame at a time (PyAV), for long videos and bulk extraction: memory holds one
    frame, not the clip. ``indices`` / ``timestamps`` / ``clip_spans`` are known before decoding; iterate
    for ``(index, timestamp, frame)`` in order. With ``allow_partial`` frames that cannot be decoded are
    skipped and ``partial`` becomes True. Made by ``open_sample``, which owns the opened reader."""

    def __init__(
        self, reader: PyAVReader, scan: Scan, p: Plan, size: Size, allow_partial: bool, partial: bool
    ) -> None:
        self.size = size
        self.path = reader.path
        self.allow_partial = allow_partial
        self.partial = partial
        self._reader = reader
        self._scan = scan
        self.timeline = tl = scan.timeline
        self.info = reader.header_info(tl)
        self.indices = list(p.indices)
        self.timestamps = [float(tl.times[i]) for i in self.indices]
        self.clip_spans = p.clip_spans
        self.frames_per_clip = p.frames_per_clip
        self.failure: str | None = None

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        wanted = sorted(set(self.indices))
        plan_pos = 0
        frames = self._reader.iter_decode(
            self.timeline, wanted, self.size, self.allow_partial, sequential=self._scan.sequential
        )
        for i, frame in frames:
            while plan_pos < len(self.indices) and self.indices[plan_pos] < i:
                plan_pos += 1  # skipped: could not be decoded
            while plan_pos < len(self.indices) and self.indices[plan_pos] == i:
                yield i, self.timestamps[plan_pos], frame
                plan_pos += 1
        self.failure = self._reader.failure
        self.partial = self.partial or self.failure is not None

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> SampleStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sample(
    path: str | os.PathLike, strategy: Strategy, **options: Unpack[SampleOptions]
) -> SampleStream:
    """Like ``sample`` but frames come one at a time: ``with open_sample(p, Fps(1)) as s: for i, t, f in s``."""
    o = _open(path, strategy, options)
    try:
        o.reader.read_rotation()
        return SampleStream(o.reader, o.scan, o.plan, o.size, o.allow_partial, o.partial)
    except BaseException:
        o.reader.close()
        raise


def _fill(path, indices: list[int], frames) -> tuple[np.ndarray | None, set[int]]:
    """Copy frames into one preallocated (T, H, W, 3) array as they arrive, so each decoded picture is
    released at once (FFmpeg reuses its buffers) and the clip is never held twice."""
    where: dict[int, list[int]] = {}
    for j, i in enumerate(indices):
        where.setdefault(i, []).append(j)
    arr = None
    got: set[int] = set()
    for i, frame in frames:
        if arr is None:
            arr = np.empty((len(indices), *frame.shape), dtype=np.uint8)
        elif frame.shape != arr.shape[1:]:
            raise VideoDecodeError(
                path, "the frame size changes within the video; pass size= to sample at one size"
            )
        for j in where.get(i, ()):
            arr[j] = frame
        got.add(i)
    return arr, got


def _assemble(path, p, tl, arr, got, failure, partial, info) -> Clip:
    keep = [j for j, i in enumerate(p.indices) if i in got]
    spans = p.clip_spans
    if failure is not None:
        partial = True
        if spans is not None:  # keep only whole clips so every clip still has frames_per_clip frames
            n = p.frames_per_clip
            whole = [c for c in range(len(spans)) if all(p.indices[c * n + j] in got for j in range(n))]
            keep = [c * n + j for c in whole for j in range(n)]
            spans = [spans[c] for c in whole]
    if not keep or arr is None:
        raise VideoDecodeError(path, failure or "no frame could be decoded")
    if len(keep) < len(p.indices):
        arr = arr[keep]
    indices = [p.indices[j] for j in keep]
    return Clip(
        frames=arr,
        timestamps=[float(tl.times[i]) for i in indices],
        indices=indices,
        info=info,
        clip_spans=spans,
        frames_per_clip=p.frames_per_clip,
        partial=partial,
    )
