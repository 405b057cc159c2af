"""OpenAI chat messages -> backend messages: text, images as data URLs, videos by path inside the
allowed root. Anything else is refused with the HTTP status a client can act on (400 malformed,
403 a path outside the root)."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sparrow.refine.backends.base import Message, VideoRef


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_data_url(url: str) -> bytes:
    if not url.startswith("data:image/") or ";base64," not in url:
        raise RequestError("images must be data URLs (data:image/...;base64,...)")
    try:
        return base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError("image data URL is not valid base64") from e


def resolve_video(url: str, root: str | os.PathLike | None) -> Path:
    """The video file a ``video_url`` names, which must lie inside ``root`` (symlinks resolved)."""
    if root is None:
        raise RequestError("this server takes no videos (start it with --video-root DIR)", 403)
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        raise RequestError("videos are given by path or file:// URL inside the server's video root")
    raw = unquote(parsed.path) if parsed.scheme == "file" else url
    base = Path(root).resolve()
    path = (base / raw).resolve()  # an absolute raw path replaces base
    if path != base and base not in path.parents:
        raise RequestError(f"video path {raw!r} is outside the server's video root", 403)
    if not path.is_file():
        raise RequestError(f"video not found: {raw!r}")
    return path


def _time(part: dict[str, Any], key: str) -> float | None:
    v = part.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise RequestError(f"video '{key}' must be a number of seconds")
    return float(v)


def parse_message(m: Any, root: str | os.PathLike | None) -> Message:
    if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
        raise RequestError("each message needs a role of system, user or assistant")
    content = m.get("content")
    if isinstance(content, str):
        return Message(m["role"], content)
    if not isinstance(content, list):
        raise RequestError("message content must be a string or a list of parts")
    texts, images, video = [], [], None
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            images.append(decode_data_url(str(part["image_url"].get("url", ""))))
        elif kind == "video_url" and isinstance(part.get("video_url"), dict):
            if video is not None:
                raise RequestError("one video per message")
            v = part["video_url"]
            video = VideoRef(
                str(resolve_video(str(v.get("url", "")), root)), _time(v, "start"), _time(v, "end")
            )
        else:
            raise RequestError(f"unsupported content part {kind!r} (text, image_url, video_url)")
    return Message(m["role"], "\n".join(texts), tuple(images), video)


def parse_messages(messages: Any, root: str | os.PathLike | None) -> tuple[Message, ...]:
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    return tuple(parse_message(m, root) for m in messages)
