"""The native sample record, its JSONL reader/writer, and converters to other training formats.

A record is one training sample: chat ``messages`` whose user turns hold one ``<video>`` / ``<image>``
placeholder per ``media`` item, in order. Media paths are relative to the JSONL file's directory and
must stay inside it (or inside an explicit media root) so a record can never point the loader at
arbitrary files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    frames that have no time); ``image``: one image file."""

    type: MediaType
    path: str | None = None
    paths: list[str] | None = None
    start: float | None = None
    end: float | None = None
    timestamps: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.type == "frames":
            return {"type": "frames", "paths": list(self.paths or []), "timestamps": self.timestamps}
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
            return cls(
                type="frames", paths=list(paths), timestamps=None if ts is None else [float(t) for t in ts]
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
        expected = [VIDEO_TOKEN if m.type in ("video", "frames") else IMAGE_TOKEN for m in self.media]
        if tokens != expected:
            raise RecordError(
                f"record {self.id!r}: placeholders {tokens} do not match media {[m.type for m in self.media]}"
            )

    @property
    def modality(self) -> str:
        """'text', 'image', 'multi-image' or 'video' — the buckets of Apollo's data mix."""
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
    prefix = "".join((VIDEO_TOKEN if m.type in ("video", "frames") else IMAGE_TOKEN) + "\n" for m in media)
    return Sample(
        id=sample_id,
        messages=[{"role": "user", "content": prefix + question}, {"role": "assistant", "content": answer}],
        media=media,
        source=source,
        meta=dict(meta or {}),
    )


# ---------------------------------------------------------------------------------------------- paths


def resolve_media_path(
    root: str | os.PathLike, relpath: str, media_root: str | os.PathLike | None = None
) -> Path:
    """Resolve a record's media path against its root, refusing anything that escapes it.

    ``root`` is the JSONL file's directory; ``media_root``, when the user gives one explicitly, is the
    directory paths are resolved against and confined to instead.
    """
    base = Path(media_root if media_root is not None else root).resolve()
    if not relpath:
        raise RecordError("empty media path")
    candidate = Path(relpath)
    full = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if full != base and base not in full.parents:
        raise RecordError(f"media path {relpath!r} resolves outside the dataset root {str(base)!r}")
    return full


def check_media_paths(
    sample: Sample, root: str | os.PathLike, media_root: str | os.PathLike | None = None
) -> None:
    """Raise RecordError if any media path of the sample leaves its root."""
    for m in sample.media:
        for p in m.all_paths():
            resolve_media_path(root, p, media_root)


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


# ---------------------------------------------------------------------------------------- converters

FORMATS = ("native", "llava", "sharegpt", "minicpm")


def _media_tag(m: Media) -> str:
    return VIDEO_TOKEN if m.type in ("video", "frames") else IMAGE_TOKEN


def _frames_dir(m: Media) -> str:
    parents = {str(Path(p).parent) for p in m.paths or []}
    if len(parents) != 1:
        raise RecordError("LLaVA's 'video' key takes one frame directory; these frames span several")
    return parents.pop()


def to_llava(sample: Sample) -> dict[str, Any]:
    """LLaVA layout: ``conversations`` with from/value; ``video`` (file or frame directory) or ``image``.
    LLaVA takes one visual input per sample (images may be a list)."""
    roles = {"user": "human", "assistant": "gpt", "system": "system"}
    out: dict[str, Any] = {
        "id": sample.id,
        "conversations": [{"from": roles[m["role"]], "value": m["content"]} for m in sample.messages],
    }
    videos = [m for m in sample.media if m.type in ("video", "frames")]
    images = [m for m in sample.media if m.type == "image"]
    if videos and images:
        raise RecordError(f"record {sample.id!r}: LLaVA cannot hold videos and images in one sample")
    if len(videos) > 1:
        raise RecordError(f"record {sample.id!r}: LLaVA holds one video per sample")
    if videos:
        v = videos[0]
        out["video"] = v.path if v.type == "video" else _frames_dir(v)
    elif images:
        out["image"] = images[0].path if len(images) == 1 else [m.path for m in images]
    return out


def from_llava(d: dict[str, Any], root: str | os.PathLike | None = None, source: str = "llava") -> Sample:
    """Read a LLaVA record. A ``video`` that is a directory under ``root`` becomes its sorted frames."""
    roles = {
        "human": "user",
        "gpt": "assistant",
        "system": "system",
        "user": "user",
        "assistant": "assistant",
    }
    conv = d.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise RecordError("LLaVA record needs a non-empty 'conversations' list")
    messages = []
    for turn in conv:
        if (
            not isinstance(turn, dict)
            or turn.get("from") not in roles
            or not isinstance(turn.get("value"), str)
        ):
            raise RecordError("each LLaVA turn needs 'from' (human/gpt/system) and a string 'value'")
        messages.append({"role": roles[turn["from"]], "content": turn["value"]})
    media: list[Media] = []
    if "video" in d:
        vpath = d["video"]
        full = resolve_media_path(root, vpath) if root is not None else None
        if full is not None and full.is_dir():
            frames = sorted(
                p for p in full.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
            )
            media.append(Media(type="frames", paths=[str(Path(vpath) / p.name) for p in frames]))
        else:
            media.append(Media(type="video", path=vpath))
    elif "image" in d:
        imgs = d["image"] if isinstance(d["image"], list) else [d["image"]]
        media.extend(Media(type="image", path=p) for p in imgs)
    sample = Sample(id=str(d.get("id") or ""), messages=messages, media=media, source=source)
    if not sample.id:
        raise RecordError("LLaVA record needs an 'id'")
    sample.validate()
    return sample


def to_sharegpt(sample: Sample) -> dict[str, Any]:
    """ShareGPT as LLaMA-Factory reads it: ``messages`` (role/content) with ``<video>``/``<image>`` tags,
    and ``videos`` / ``images`` lists; a frame sequence is written as a list of frame paths."""
    out: dict[str, Any] = {"messages": [dict(m) for m in sample.messages]}
    videos = [m.path if m.type == "video" else list(m.paths or []) for m in sample.media if m.type != "image"]
    images = [m.path for m in sample.media if m.type == "image"]
    if videos:
        out["videos"] = videos
    if images:
        out["images"] = images
    out["id"] = sample.id
    return out


def from_sharegpt(d: dict[str, Any], source: str = "sharegpt", sample_id: str | None = None) -> Sample:
    msgs = d.get("messages") or d.get("conversations")
    if not isinstance(msgs, list) or not msgs:
        raise RecordError("ShareGPT record needs a non-empty 'messages' list")
    messages = []
    for m in msgs:
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES or not isinstance(m.get("content"), str):
            raise RecordError("each ShareGPT message needs role (system/user/assistant) and string content")
        messages.append({"role": role, "content": m["content"]})
    videos = list(d.get("videos") or [])
    images = list(d.get("images") or [])
    # Media follow the order of their tags in the text.
    media: list[Media] = []
    for tag in placeholders(" ".join(m["content"] for m in messages)):
        if tag == VIDEO_TOKEN:
            if not videos:
                raise RecordError("more <video> tags than 'videos'")
            v = videos.pop(0)
            media.append(
                Media(type="frames", paths=list(v)) if isinstance(v, list) else Media(type="video", path=v)
            )
        else:
            if not images:
                raise RecordError("more <image> tags than 'images'")
            media.append(Media(type="image", path=images.pop(0)))
    if videos or images:
        raise RecordError("more 'videos'/'images' than tags in the messages")
    sid = sample_id or str(d.get("id") or "")
    if not sid:
        raise RecordError("ShareGPT record needs an 'id' (or pass one)")
    return Sample(id=sid, messages=messages, media=media, source=source)


def to_minicpm(sample: Sample) -> dict[str, Any]:
    """MiniCPM-V fine-tuning JSON. Multi-image: ``image`` maps ``<image_NN>`` to a path and the first user
    turn holds one placeholder per line before the question (Sparrow's layout for frame sequences)."""
    if any(m.type == "video" for m in sample.media):
        raise RecordError(f"record {sample.id!r}: MiniCPM-V takes images; extract frames first")
    all_paths = [p for m in sample.media for p in m.all_paths()]
    conversations = []
    placed = not all_paths
    for m in sample.messages:
        content = m["content"]
        if m["role"] == "user" and not placed:
            for tag in (VIDEO_TOKEN, IMAGE_TOKEN):
                content = content.replace(tag + "\n", "").replace(tag, "")
            if len(all_paths) == 1:
                content = "<image>\n" + content
            else:
                content = "".join(f"<image_{i:02d}>\n" for i in range(len(all_paths))) + content
            placed = True
        conversations.append({"role": m["role"], "content": content})
    out: dict[str, Any] = {"id": sample.id, "conversations": conversations}
    if len(all_paths) == 1:
        out["image"] = all_paths[0]
    elif all_paths:
        out["image"] = {f"<image_{i:02d}>": p for i, p in enumerate(all_paths)}
    return out


def from_minicpm(d: dict[str, Any], source: str = "minicpm") -> Sample:
    """Read MiniCPM-V JSON. Several images become one ``frames`` item (a pseudo-video), one image an image."""
    conv = d.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise RecordError("MiniCPM-V record needs a non-empty 'conversations' list")
    image = d.get("image")
    if isinstance(image, dict):
        # numeric order: "<image_100>" sorts after "<image_99>", not after "<image_10>"
        keys = sorted(image, key=lambda k: (int("".join(c for c in k if c.isdigit()) or -1), k))
        media = [Media(type="frames", paths=[image[k] for k in keys])]
        strip = keys
    elif isinstance(image, str):
        media = [Media(type="image", path=image)]
        strip = ["<image>"]
    else:
        media, strip = [], []
    messages = []
    placed = False
    for m in conv:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise RecordError("each MiniCPM-V turn needs role and string content")
        content = m["content"]
        if strip and m["role"] == "user" and not placed:
            for key in strip:
                content = content.replace(key + "\n", "").replace(key, "")
            content = _media_tag(media[0]) + "\n" + content
            placed = True
        messages.append({"role": m["role"], "content": content})
    sid = str(d.get("id") or "")
    if not sid:
        raise RecordError("MiniCPM-V record needs an 'id'")
    sample = Sample(id=sid, messages=messages, media=media, source=source)
    sample.validate()
    return sample


def convert(sample: Sample, fmt: str) -> dict[str, Any]:
    """Native sample -> a dict in format ``fmt`` (native, llava, sharegpt, minicpm)."""
    if fmt == "native":
        return sample.to_dict()
    if fmt == "llava":
        return to_llava(sample)
    if fmt == "sharegpt":
        return to_sharegpt(sample)
    if fmt == "minicpm":
        return to_minicpm(sample)
    raise RecordError(f"unknown format {fmt!r}; choose from {FORMATS}")
