"""Write small test videos whose frames show their own index, and read the index back.

Every frame carries a 6x6 grid of large cells: the four corners are fixed orientation markers, then 16
bits of the frame index and the same 16 bits inverted. The cells are big (a sixth of the frame side), so
the code survives lossy codecs, chroma subsampling and resizing; the markers and the inverted copy make a
rotated, flipped, colour-swapped or wrong frame fail loudly instead of reading as some other index.

    spec = write_video(tmp_path / "a.mp4", num_frames=90, codec="h264", fps=30)
    frame = ...decoded RGB frame (H, W, 3) uint8...
    assert read_index(frame) == expected_index

``VideoSpec`` holds the ground truth (presentation timestamps as written, rotation, sizes) and
``spec.frame_at(t)`` gives the index of the frame shown at time ``t`` seconds after the first frame.
Used by the tests of every part that decodes video (video, model, world, eval).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

GRID = 6
BITS = 16
# Corner markers (row, col) -> bit; asymmetric under every rotation and flip.
MARKERS = {(0, 0): 1, (0, GRID - 1): 0, (GRID - 1, 0): 1, (GRID - 1, GRID - 1): 0}
# A "1" cell is bright with low blue, a "0" cell is dark with high blue: reading the red channel tells
# them apart, and a BGR/RGB swap inverts every bit (caught by the markers).
ONE = (235, 200, 40)
ZERO = (20, 40, 200)

# codec name -> (PyAV encoder, default container suffix)
CODECS = {
    "h264": ("libx264", ".mp4"),
    "hevc": ("libx265", ".mp4"),
    "vp9": ("libvpx-vp9", ".webm"),
    "mpeg4": ("mpeg4", ".mp4"),
}


def _data_cells() -> list[tuple[int, int]]:
    return [(r, c) for r in range(GRID) for c in range(GRID) if (r, c) not in MARKERS]


def code_bits(index: int) -> dict[tuple[int, int], int]:
    """Cell -> bit for one frame index (markers included)."""
    if not 0 <= index < 2**BITS:
        raise ValueError(f"index {index} does not fit in {BITS} bits")
    bits = [(index >> (BITS - 1 - k)) & 1 for k in range(BITS)]
    bits += [1 - b for b in bits]
    cells = dict(MARKERS)
    cells.update(zip(_data_cells(), bits, strict=True))
    return cells


def _cell_bounds(n: int, k: int) -> tuple[int, int]:
    return (k * n) // GRID, ((k + 1) * n) // GRID


def make_frame(index: int, height: int = 64, width: int = 64) -> np.ndarray:
    """The RGB image (as displayed) that encodes ``index``."""
    img = np.empty((height, width, 3), dtype=np.uint8)
    for (r, c), bit in code_bits(index).items():
        r0, r1 = _cell_bounds(height, r)
        c0, c1 = _cell_bounds(width, c)
        img[r0:r1, c0:c1] = ONE if bit else ZERO
    return img


def read_index(frame: np.ndarray) -> int:
    """Decode the index a frame shows. ``frame``: (H, W, 3) uint8 RGB, any size (resized, cropped to
    the display orientation). Raises ValueError when the frame does not carry a valid code (wrong
    orientation, swapped channels, garbage)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) frame, got shape {frame.shape}")
    h, w = frame.shape[:2]
    red = frame[..., 0].astype(np.float32)
    bits: dict[tuple[int, int], int] = {}
    for r in range(GRID):
        r0, r1 = _cell_bounds(h, r)
        for c in range(GRID):
            c0, c1 = _cell_bounds(w, c)
            # The cell's central half: away from edges where codecs and scalers blend neighbours.
            ry, rx = max((r1 - r0) // 4, 0), max((c1 - c0) // 4, 0)
            patch = red[r0 + ry : max(r1 - ry, r0 + ry + 1), c0 + rx : max(c1 - rx, c0 + rx + 1)]
            bits[(r, c)] = int(patch.mean() > 127.5)
    for cell, want in MARKERS.items():
        if bits[cell] != want:
            raise ValueError(f"orientation marker {cell} reads {bits[cell]}, expected {want}")
    data = [bits[c] for c in _data_cells()]
    value, check = data[:BITS], data[BITS:]
    if any(a == b for a, b in zip(value, check, strict=True)):
        raise ValueError("frame code fails its check bits (not a test frame, or too damaged)")
    return int("".join(map(str, value)), 2)


@dataclass
class VideoSpec:
    """Ground truth of a written test video."""

    path: Path
    codec: str
    num_frames: int
    pts: list[int]  # presentation timestamps as written, in time_base units, presentation order
    time_base: Fraction
    width: int  # display size (after rotation)
    height: int
    rotation: int  # clockwise degrees a player rotates the stored picture by
    last_duration: int  # duration of the last frame, time_base units
    meta: dict = field(default_factory=dict)

    @property
    def times(self) -> list[float]:
        """Presentation time of each frame in seconds, the first frame at 0.0."""
        return [float((p - self.pts[0]) * self.time_base) for p in self.pts]

    @property
    def exact_times(self) -> list[Fraction]:
        return [(p - self.pts[0]) * self.time_base for p in self.pts]

    @property
    def exact_duration(self) -> Fraction:
        return (self.pts[-1] + self.last_duration - self.pts[0]) * self.time_base

    @property
    def start_time(self) -> float:
        """Written timestamp of the first frame, seconds (a container may add its own offset)."""
        return float(self.pts[0] * self.time_base)

    @property
    def duration(self) -> float:
        """From the first frame's start to the last frame's end, seconds."""
        return float((self.pts[-1] + self.last_duration - self.pts[0]) * self.time_base)

    def frame_at(self, t: float | Fraction) -> int:
        """Index of the frame whose presentation interval [t_i, t_{i+1}) contains ``t`` (clamped)."""
        i = bisect.bisect_right(self.exact_times, Fraction(t)) - 1
        return min(max(i, 0), self.num_frames - 1)


def _timing(
    path: Path,
    num_frames: int,
    fps: Fraction,
    pts: list[int] | None,
    time_base: Fraction | None,
    start_pts: int,
) -> tuple[Fraction, list[int], int, Fraction]:
    """``write_video``'s time base, written timestamps, last frame's duration and nominal rate."""
    if pts is None:
        tb = time_base or 1 / fps
        step = (1 / fps) / tb
        if step.denominator != 1:
            raise ValueError(f"time_base {tb} cannot represent frame rate {fps}")
        if path.suffix.lower() in (".mkv", ".webm") and (Fraction(1000) / fps).denominator != 1:
            # Matroska stores milliseconds: 30 fps would be rounded to 33/67 ms and the ground truth
            # here would no longer be what the file holds.
            raise ValueError("mkv/webm store milliseconds: use a rate like 25 or 50 fps, or explicit pts")
        written = [start_pts + int(i * step) for i in range(num_frames)]
        last_duration = int(step)
        rate = fps
    else:
        if len(pts) != num_frames or any(b <= a for a, b in zip(pts, pts[1:], strict=False)):
            raise ValueError("pts must hold num_frames strictly increasing values")
        tb = time_base or Fraction(1, 1000)
        written = [start_pts + p for p in pts]
        last_duration = (written[-1] - written[0]) // max(num_frames - 1, 1) if num_frames > 1 else 1
        # A nominal rate for the encoder's rate control; timestamps carry the real timing.
        span = (written[-1] - written[0] + last_duration) * tb
        rate = Fraction(num_frames) / span if span > 0 else Fraction(30)
        rate = rate.limit_denominator(1000)
    return tb, written, last_duration, rate


def _encoder_options(
    stream: Any, codec: str, gop: int, bframes: int, quality: str, open_gop: bool
) -> dict[str, str]:
    """The encoder's options for ``write_video`` (and the B-frame settings it makes on ``stream``)."""
    opts: dict[str, str] = {}
    if codec in ("h264", "hevc"):
        stream.codec_context.max_b_frames = bframes
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
        if codec == "h264":
            params += ":b-adapt=0" + (":open-gop=1" if open_gop else "")
        else:
            params += ":log-level=error" + (":open-gop=1" if open_gop else ":open-gop=0")
        opts = {
            "preset": "veryfast" if codec == "h264" else "ultrafast",
            "crf": "12" if quality == "high" else "28",
            ("x264-params" if codec == "h264" else "x265-params"): params,
        }
    elif codec == "vp9":
        opts = {"crf": "15", "b:v": "0", "deadline": "realtime", "cpu-used": "8", "g": str(gop)}
    else:  # mpeg4
        stream.codec_context.max_b_frames = bframes
        stream.bit_rate = 4_000_000
        opts = {"g": str(gop)}
    return opts


def write_video(
    path: str | Path,
    num_frames: int = 60,
    *,
    codec: str = "h264",
    fps: float | Fraction = 30,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    start_pts: int = 0,
    width: int = 64,
    height: int = 64,
    gop: int = 250,
    bframes: int = 2,
    rotation: int = 0,
    quality: str = "high",
    faststart: bool = False,
    open_gop: bool = False,
) -> VideoSpec:
    """Write a test video whose frame ``i`` shows index ``i`` (see ``read_index``).

    codec: "h264" (libx264, B-frames, keyframe every ``gop`` frames, no scene-cut keyframes),
    "vp9" (libvpx-vp9), "mpeg4" (MPEG-4 part 2, B-frames). The container follows the path's suffix
    (.mp4, .mkv, .webm, .ts, .avi, .mov).
    fps: constant rate, e.g. 30 or Fraction(30000, 1001); ignored when ``pts`` is given.
    pts: explicit increasing presentation timestamps in ``time_base`` units (default 1/1000) for a
    variable frame rate; ``start_pts`` is added to every timestamp (a nonzero first timestamp).
    width, height: the displayed size; with ``rotation`` (0/90/180/270, clockwise) the stored picture
    is rotated the other way and the stream carries display-matrix metadata, so a player that applies
    the rotation shows the code upright.
    faststart: MP4 index at the front (then a truncated copy still opens, with frames missing).
    open_gop: H.264/HEVC open GOPs: B-frames after a keyframe in decode order may show before it and
    reference the previous GOP (a seek to that keyframe cannot decode them).
    """
    path = Path(path)
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}")
    if rotation % 90 or not 0 <= rotation < 360:
        raise ValueError("rotation must be 0, 90, 180 or 270")
    encoder, _ = CODECS[codec]
    fps = Fraction(fps).limit_denominator(100000)
    tb, written, last_duration, rate = _timing(path, num_frames, fps, pts, time_base, start_pts)

    stored_w, stored_h = (height, width) if rotation in (90, 270) else (width, height)
    options = {"movflags": "faststart"} if faststart else {}
    container = av.open(str(path), mode="w", options=options)
    try:
        stream = container.add_stream(encoder, rate=rate)
        stream.width, stream.height = stored_w, stored_h
        stream.pix_fmt = "yuv420p"
        stream.time_base = tb
        stream.codec_context.time_base = tb
        stream.codec_context.gop_size = gop
        stream.options = _encoder_options(stream, codec, gop, bframes, quality, open_gop)
        if rotation:
            # A display matrix stores the counter-clockwise angle; players rotate by its negation.
            stream.set_display_rotation(-rotation)
        for i, p in enumerate(written):
            shown = make_frame(i, height, width)
            stored = np.ascontiguousarray(np.rot90(shown, k=rotation // 90))  # undone by a cw rotation
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24").reformat(format="yuv420p")
            frame.pts = p
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()
    return VideoSpec(
        path=path,
        codec=codec,
        num_frames=num_frames,
        pts=written,
        time_base=Fraction(tb),
        width=width,
        height=height,
        rotation=rotation,
        last_duration=last_duration,
        meta={"gop": gop, "bframes": bframes, "fps": None if pts is not None else fps},
    )


def truncate(path: str | Path, keep: float, out: str | Path | None = None) -> Path:
    """Copy (or cut in place) a file keeping its first ``keep`` fraction of bytes: a broken download."""
    path = Path(path)
    data = path.read_bytes()
    target = Path(out) if out is not None else path
    target.write_bytes(data[: max(1, int(len(data) * keep))])
    return target


def decode_all(path: str | Path) -> list[np.ndarray]:
    """Every frame, RGB, decoded plainly with PyAV (no rotation applied): a reference for tests."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def write_empty_video(path: str | Path) -> Path:
    """A Matroska file with a video stream that holds no frames (and an audio stream that has some)."""
    path = Path(path)
    with av.open(str(path), mode="w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width = v.height = 64
        v.pix_fmt = "yuv420p"
        _write_silence(c)
    return path


def write_audio_only(path: str | Path) -> Path:
    """A file with sound and no video stream (.mkv / .wav)."""
    path = Path(path)
    with av.open(str(path), mode="w") as c:
        _write_silence(c)
    return path


def _write_silence(c: av.container.OutputContainer, frames: int = 10) -> None:
    a = c.add_stream("pcm_s16le", rate=16000)
    for i in range(frames):
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.int16), format="s16", layout="mono")
        f.sample_rate = 16000
        f.pts = i * 1024
        for p in a.encode(f):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)
