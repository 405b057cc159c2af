"""Converters between the native record (``sparrow.records``) and other training formats: LLaVA
(``conversations`` from/value, ``video`` / ``image`` keys), ShareGPT as LLaMA-Factory reads it
(``messages`` + ``videos`` / ``images``, ``<video>`` tags) and MiniCPM-V multi-image JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sparrow.records import (
    IMAGE_TOKEN,
    ROLES,
    VIDEO_TOKEN,
    Media,
    RecordError,
    Sample,
    placeholders,
    resolve_media_path,
)

FORMATS = ("native", "llava", "sharegpt", "minicpm")
EXPORT_FORMATS = FORMATS[1:]  # the formats written besides native JSONL


def _frames_dir(m: Media) -> str:
    parents = {str(Path(p).parent) for p in m.paths or []}
    if len(parents) != 1:
        raise RecordError("LLaVA's 'video' key takes one frame directory; these frames span several")
    return parents.pop()


def _whole_videos(sample: Sample, fmt: str) -> None:
    """Refuse a video segment (``start``/``end``) a format cannot hold: written as the whole file, a 2 s
    clip's caption would be paired with the whole video."""
    for m in sample.media:
        if m.type == "video" and (m.start is not None or m.end is not None):
            span = f"{m.start if m.start is not None else 0:g}-{'end' if m.end is None else f'{m.end:g}'}s"
            raise RecordError(
                f"record {sample.id!r}: {fmt} cannot hold the segment {span} of {m.path!r} (it would widen "
                "to the whole video); extract the segment's frames first (sparrow frames) or write native only"
            )


def to_llava(sample: Sample) -> dict[str, Any]:
    """LLaVA layout: ``conversations`` with from/value; ``video`` (file or frame directory) or ``image``.
    LLaVA takes one visual input per sample (images may be a list) and no video segment."""
    _whole_videos(sample, "LLaVA")
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
    and ``videos`` / ``images`` lists; a frame sequence is written as a list of frame paths. A video
    segment (``start``/``end``) is refused: LLaMA-Factory would read the whole file."""
    _whole_videos(sample, "ShareGPT")
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
            content = media[0].placeholder + "\n" + content
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
