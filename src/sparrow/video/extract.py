"""Pre-extract frames of many videos at a fixed fps (Sparrow's 1 fps extraction, done right).

Each video is one item of a ``sparrow.jobs`` stage: sampled with ``Fps`` (frames shown at 0, 1/fps, ... s), decoded
one frame at a time (memory flat in video length) and written as JPEG/PNG with a temp name + rename.
The manifest lists every video's frames with their timestamps and indices, in input order, identical
for any worker count and after a resume; videos that fail go to ``errors.jsonl`` and the job goes on.

Layout of ``out``::

    manifest.jsonl   {"id", "video", "frames": [rel paths], "timestamps", "indices", "duration", "fps", ...}
    frames/<id>/00000.jpg ...
    errors.jsonl     {"id", "line", "source", "reason"} per video that failed (absent when none did)
    summary.json
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Unpack

from PIL import Image

from sparrow.io import JsonlWriter, atomic_write_bytes
from sparrow.jobs import (
    Collector,
    ItemResult,
    JobArgs,
    JobOptions,
    JobReport,
    Stage,
    VideoJobSummary,
    WorkItem,
    run_job,
)
from sparrow.video.info import VIDEO_SUFFIXES
from sparrow.video.sampling import open_sample
from sparrow.video.sizing import Size, check_size
from sparrow.video.strategies import Fps

LIST_SUFFIXES = {".txt", ".lst", ".list"}
IMAGE_FORMATS = ("jpg", "png")


class ExtractError(ValueError):
    """The job cannot start (bad settings, unreadable list file)."""


@dataclass
class ExtractConfig:
    """How frames are extracted; each field's comment is also its ``sparrow frames`` option's help."""

    fps: float = 1.0  # Frames per second: the frames shown at 0, 1/fps, 2/fps, ... s.
    max_frames: int | None = None  # At most this many frames per video (evenly thinned).
    size: Size = None
    image_format: str = "jpg"  # Image format: jpg or png.
    quality: int = 90  # JPEG quality (1-100).
    # Keep the decodable frames of truncated videos instead of listing them as errors.
    allow_partial: bool = False

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ExtractError(f"fps must be positive, got {self.fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ExtractError("max_frames must be at least 1")
        fmt = self.image_format.lower().replace("jpeg", "jpg")
        if fmt not in IMAGE_FORMATS:
            raise ExtractError(f"image format must be jpg or png, got {self.image_format!r}")
        self.image_format = fmt
        if not 1 <= self.quality <= 100:
            raise ExtractError("JPEG quality must be in 1..100")
        try:
            self.size = check_size(self.size)
        except ValueError as e:
            raise ExtractError(str(e)) from None


@dataclass
class ExtractSummary(VideoJobSummary):
    """What the job did; written to ``summary.json``."""

    partial: int = 0
    frames: int = 0

    @property
    def videos_per_second(self) -> float:
        return self.videos / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "videos_per_second": self.videos_per_second}


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Video paths from arguments: a video file, a folder (its video files, recursively, sorted) or a
    list file (.txt: one path per line, relative to the list's folder; '#' comments)."""
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.suffix.lower() in LIST_SUFFIXES:
            try:
                lines = p.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise ExtractError(f"cannot read list file {p}: {e}") from None
            for line in lines:
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line)
                    yield q if q.is_absolute() else p.parent / q
        else:
            yield p  # a missing file becomes that item's error, not the job's


def assign_ids(paths: list[Path]) -> list[str]:
    """Readable, unique, stable ids: the file stem, plus a short hash of the path where stems clash."""
    stems = [re.sub(r"[^A-Za-z0-9._-]+", "_", p.stem).strip("._") or "video" for p in paths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    ids = []
    for s, p in zip(stems, paths, strict=True):
        if counts[s] > 1:
            s = f"{s}-{hashlib.sha1(str(p).encode('utf-8')).hexdigest()[:8]}"
        ids.append(s)
    seen: set[str] = set()
    for k, i in enumerate(ids):  # the same path given twice: keep both, numbered
        j, base = 1, i
        while i in seen:
            j += 1
            i = f"{base}-{j}"
        ids[k] = i
        seen.add(i)
    return ids


def _encode(frame: Any, cfg: ExtractConfig) -> bytes:
    buf = io.BytesIO()
    if cfg.image_format == "jpg":
        Image.fromarray(frame).save(buf, format="JPEG", quality=cfg.quality)
    else:
        Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def extract_one(video: str, vid: str, out: Path, cfg: ExtractConfig, threads: int = 0) -> dict[str, Any]:
    """Sample one video and write its frames under ``out/frames/<vid>``; return its manifest row.
    Raises (VideoError, OSError) on failure."""
    rel_dir = Path("frames") / vid
    strategy = Fps(cfg.fps, max_frames=cfg.max_frames)
    frames, stamps, indices = [], [], []
    with open_sample(
        video, strategy, size=cfg.size, allow_partial=cfg.allow_partial, threads=threads
    ) as stream:
        for k, (i, t, frame) in enumerate(stream):
            name = rel_dir / f"{k:05d}.{cfg.image_format}"
            atomic_write_bytes(out / name, _encode(frame, cfg))
            frames.append(name.as_posix())
            stamps.append(t)
            indices.append(i)
        info = stream.info
        partial = stream.partial
    return {
        "id": vid,
        "video": video,
        "frames": frames,
        "timestamps": stamps,
        "indices": indices,
        "duration": info.duration,
        "fps": info.fps,
        "num_frames": info.num_frames,
        "width": info.width,
        "height": info.height,
        "rotation": info.rotation,
        "partial": partial,
    }


class ExtractStage(Stage):
    """One item per video; the manifest lists the videos' frames in input order."""

    name = "frames"
    unit = "frames"

    def __init__(self, paths: list[Path], out: Path, cfg: ExtractConfig, threads: int = 0):
        self.paths, self.out, self.cfg, self.threads = paths, out, cfg, threads
        self.ids = assign_ids(paths)

    def fingerprint(self) -> dict[str, Any]:
        settings = asdict(self.cfg)
        settings["size"] = list(self.cfg.size) if isinstance(self.cfg.size, tuple) else self.cfg.size
        return settings

    def total(self) -> int:
        return len(self.paths)

    def items(self) -> Iterator[WorkItem]:
        for vid, p in zip(self.ids, self.paths, strict=True):
            yield WorkItem(key=vid, payload={"id": vid, "video": str(p)}, id=vid, source=str(p))

    def process(self, payload: dict[str, Any]) -> dict[str, Any]:
        return extract_one(payload["video"], payload["id"], self.out, self.cfg, self.threads)

    def collector(self, out: Path) -> Collector:
        return _Manifest(out / "manifest.jsonl", self.fingerprint())

    def discard(self, out: Path) -> None:
        if (out / "frames").exists():
            shutil.rmtree(out / "frames")


class _Manifest(Collector):
    def __init__(self, path: Path, settings: dict[str, Any]):
        self.writer = JsonlWriter(path)
        self.summary = ExtractSummary(settings=settings)

    def add(self, item: WorkItem, result: ItemResult) -> int:
        value = result.value or {}
        self.writer.write(value)
        self.summary.frames += len(value["frames"])
        self.summary.partial += bool(value["partial"])
        return len(value["frames"])

    def close(self, report: JobReport) -> ExtractSummary:
        self.writer.close()
        self.summary.record(report)
        return self.summary

    def abort(self) -> None:
        self.writer.abort()


def extract(
    inputs: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    cfg: ExtractConfig,
    **job: Unpack[JobArgs],
) -> ExtractSummary:
    """Extract frames of every input video into ``out`` (see the module docstring); ``job``: workers,
    executor, overwrite, on_progress."""
    paths = list(expand_inputs(inputs))
    if not paths:
        raise ExtractError(
            "no videos given (folders are searched for " + ", ".join(sorted(VIDEO_SUFFIXES)) + ")"
        )
    options = JobOptions(**job)
    threads = 1 if options.workers > 1 else 0  # parallel processes each get one decoder thread
    return run_job(ExtractStage(paths, Path(out), cfg, threads), out, options)
