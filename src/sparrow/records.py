"""The native sample record and its JSONL reader (converters to other formats: ``sparrow.formats``).

A record is one training sample: chat ``messages`` whose user turns hold one ``<video>`` / ``<image>``
placeholder per ``media`` item, in order. Media paths are relative to the JSONL file's directory and
must stay inside it (or inside an explicit media root) so a record can never point the loader at
arbitrary files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from sparrow.io import LineError, iter_jsonl

VIDEO_TOKEN = "<video>"
IMAGE_TOKEN = "<image>"
MEDIA_TYPES = ("video", "frames", "image")
ROLES = ("system", "user", "assistant")

MediaType = Literal["video", "frames", "image"]


class RecordError(ValueError):
    """A record is malformed or unsafe; the message says what and where."""


@dataclass
class Media:
    """One visual input. ``video``: a file (optionally a [start, end] segment in seconds);
    ``frames``: an ordered list of image files (``timestamps`` in seconds, or None for synthetic
    frames that have no time; optional ``end``: when the last frame stops being shown, on the same
    clock, e.g. the video's duration from ``sparrow frames``' manifest; without it the last frame lasts
    the median step); ``image``: one image file."""

    type: MediaType
    path: str | None = None
    paths: list[str] | None = None
    start: float | None = None
    end: float | None = None
    timestamps: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.type == "frames":
            out = {"type": "frames", "paths": list(self.paths or []), "timestamps": self.timestamps}
            return out if self.end is None else {**out, "end": self.end}
        out: dict[str, Any] = {"type": self.type, "path": self.path}
        if self.type == "video":
            if self.start is not None:
                out["start"] = self.start
            if self.end is not None:
                out["end"] = self.end
        return out

    @classmethod
    def from_dict(cls, d: Any) -> Media:
        if not isinstance(d, dict):
            raise RecordError(f"media item must be an object, got {type(d).__name__}")
        kind = d.get("type")
        if kind not in MEDIA_TYPES:
            raise RecordError(f"media type must be one of {MEDIA_TYPES}, got {kind!r}")
        if kind == "frames":
            paths = d.get("paths")
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
                raise RecordError("frames media needs a non-empty list of string 'paths'")
            ts = d.get("timestamps")
            if ts is not None and (not isinstance(ts, list) or len(ts) != len(paths)):
                raise RecordError("frames 'timestamps' must be null or a list as long as 'paths'")
            end = d.get("end")
            if end is not None and (ts is None or not isinstance(end, (int, float)) or float(end) <= ts[-1]):
                raise RecordError("frames 'end' needs timestamps and must come after the last one")
            return cls(
                type="frames",
                paths=list(paths),
                timestamps=None if ts is None else [float(t) for t in ts],
                end=None if end is None else float(end),
            )
        path = d.get("path")
        if not isinstance(path, str) or not path:
            raise RecordError(f"{kind} media needs a string 'path'")
        start, end = d.get("start"), d.get("end")
        if kind == "video" and start is not None and end is not None and float(end) <= float(start):
            raise RecordError(f"video segment end ({end}) must be after start ({start})")
        return cls(
            type=kind,
            path=path,
            start=None if start is None else float(start),
            end=None if end is None else float(end),
        )

    def all_paths(self) -> list[str]:
        return list(self.paths or []) if self.type == "frames" else [self.path or ""]

    def with_paths(self, move: Callable[[str], str]) -> Media:
        """This item with ``move`` applied to each of its file paths."""
        if self.type == "frames":
            return replace(self, paths=[move(p) for p in self.paths or []])
        return replace(self, path=move(self.path or ""))

    @property
    def placeholder(self) -> str:
        """The text placeholder that stands for this item: ``<video>`` (video, frames) or ``<image>``."""
        return IMAGE_TOKEN if self.type == "image" else VIDEO_TOKEN


@dataclass
class Sample:
    """One training / evaluation sample in Sparrow's native layout."""

    id: str
    messages: list[dict[str, str]]
    media: list[Media] = field(default_factory=list)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messages": [dict(m) for m in self.messages],
            "media": [m.to_dict() for m in self.media],
            "source": self.source,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Sample:
        if not isinstance(d, dict):
            raise RecordError(f"record must be a JSON object, got {type(d).__name__}")
        sid = d.get("id")
        if not isinstance(sid, str) or not sid:
            raise RecordError("record needs a non-empty string 'id'")
        messages = d.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RecordError(f"record {sid!r}: 'messages' must be a non-empty list")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise RecordError(f"record {sid!r}: each message needs role in {ROLES} and string content")
        media = [Media.from_dict(x) for x in d.get("media") or []]
        sample = cls(
            id=sid,
            messages=[{"role": m["role"], "content": m["content"]} for m in messages],
            media=media,
            source=str(d.get("source") or ""),
            meta=dict(d.get("meta") or {}),
        )
        sample.validate()
        return sample

    def validate(self) -> None:
        """Placeholders must match media one to one, in order."""
        tokens = placeholders(" ".join(m["content"] for m in self.messages))
        expected = [m.placeholder for m in self.media]
        if tokens != expected:
            raise RecordError(
                f"record {self.id!r}: placeholders {tokens} do not match media {[m.type for m in self.media]}"
            )

    @property
    def media_kind(self) -> str:
        """'text', 'image', 'multi-image' or 'video': the buckets of Apollo's data mix."""
        if not self.media:
            return "text"
        if any(m.type in ("video", "frames") for m in self.media):
            return "video"
        return "image" if len(self.media) == 1 else "multi-image"


def placeholders(text: str) -> list[str]:
    """The ``<video>`` / ``<image>`` placeholders of a text, in order."""
    out: list[str] = []
    i = 0
    while True:
        iv, ii = text.find(VIDEO_TOKEN, i), text.find(IMAGE_TOKEN, i)
        if iv < 0 and ii < 0:
            return out
        if ii < 0 or (0 <= iv < ii):
            out.append(VIDEO_TOKEN)
            i = iv + len(VIDEO_TOKEN)
        else:
            out.append(IMAGE_TOKEN)
            i = ii + len(IMAGE_TOKEN)


def qa_sample(
    sample_id: str,
    question: str,
    answer: str,
    media: list[Media] | None = None,
    source: str = "",
    meta: dict[str, Any] | None = None,
) -> Sample:
    """A single-turn sample: one placeholder line per media item, then the question."""
    media = media or []
    prefix = "".join(m.placeholder + "\n" for m in media)
    return Sample(
        id=sample_id,
        messages=[{"role": "user", "content": prefix + question}, {"role": "assistant", "content": answer}],
        media=media,
        source=source,
        meta=dict(meta or {}),
    )


# ---------------------------------------------------------------------------------------------- paths


def resolve_media_path(
    root: str | os.PathLike,
    relpath: str,
    media_root: str | os.PathLike | None = None,
    *,
    confine: str | os.PathLike | None = None,
) -> Path:
    """Resolve a record's media path against its root, refusing anything that escapes it.

    ``root`` is the JSONL file's directory; ``media_root``, when the user gives one explicitly, is the
    directory paths are resolved against and confined to instead. ``confine``, when given, is the
    directory paths must stay inside instead (they are still resolved against ``root`` / ``media_root``):
    a user's wider root, e.g. the folder holding both ``refined/captions.jsonl`` and ``videos/``.
    """
    base = Path(media_root if media_root is not None else root).resolve()
    fence = Path(confine).resolve() if confine is not None else base
    if not relpath:
        raise RecordError("empty media path")
    candidate = Path(relpath)
    full = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if full != fence and fence not in full.parents:
        raise RecordError(f"media path {relpath!r} resolves outside the dataset root {str(fence)!r}")
    return full


def check_media_paths(
    sample: Sample,
    root: str | os.PathLike,
    media_root: str | os.PathLike | None = None,
    *,
    confine: str | os.PathLike | None = None,
) -> None:
    """Raise RecordError if any media path of the sample leaves its root (or ``confine``)."""
    for m in sample.media:
        for p in m.all_paths():
            resolve_media_path(root, p, media_root, confine=confine)


def read_samples(path: str | os.PathLike, check_paths: bool = True) -> Iterator[Sample | LineError]:
    """Stream native samples from a JSONL file; bad lines come back as LineError, never raise."""
    path = Path(path)
    root = path.parent
    for lineno, obj in iter_jsonl(path):
        if isinstance(obj, LineError):
            yield obj
            continue
        try:
            sample = Sample.from_dict(obj)
            if check_paths:
                check_media_paths(sample, root)
            yield sample
        except RecordError as e:
            yield LineError(str(path), lineno, str(e))


def load_samples(path: str | os.PathLike, check_paths: bool = True) -> tuple[list[Sample], list[LineError]]:
    """Read a whole JSONL file of samples (for small files: benchmarks, tests, splits)."""
    good: list[Sample] = []
    bad: list[LineError] = []
    for item in read_samples(path, check_paths=check_paths):
        (bad if isinstance(item, LineError) else good).append(item)
    return good, bad
