"""OpenAI chat messages -> backend messages: text, images as data URLs, videos by path inside the
allowed root. Anything else is refused with the HTTP status a client can act on (400 malformed,
403 a path outside the root). Checks that need the video's contents (is it a video, does the segment lie
inside it) are the model's processor's, answered 400 as well."""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sparrow.chat.base import BackendError, Message, VideoRef, image_mime

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_data_url(url: str) -> bytes:
    if not url.startswith("data:image/") or ";base64," not in url:
        raise RequestError("images must be data URLs (data:image/...;base64,...)")
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError("image data URL is not valid base64") from e
    check_image(data)
    return data


def check_image(data: bytes) -> None:
    """Refuse bytes that are not a readable PNG or JPEG before they reach the model."""
    from PIL import Image

    try:
        image_mime(data)
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except BackendError as e:
        raise RequestError(f"image data URL: {e}") from e
    except Exception as e:  # PIL raises many kinds for truncated or hostile files
        raise RequestError(f"image data URL is not a readable image ({type(e).__name__})") from e


def resolve_video(url: str, root: str | os.PathLike | None) -> Path:
    """The video file a ``video_url`` names, which must lie inside ``root`` (symlinks resolved)."""
    if root is None:
        raise RequestError("this server takes no videos (start it with --video-root DIR)", 403)
    try:
        parsed = urlparse(url)
        if parsed.scheme not in ("", "file"):
            raise RequestError("videos are given by path or file:// URL inside the server's video root")
        raw = unquote(parsed.path) if parsed.scheme == "file" else url
        base = Path(root).resolve()
        path = (base / raw).resolve()  # an absolute raw path replaces base
        inside = path == base or base in path.parents
        found = inside and path.is_file()
    except (ValueError, OSError) as e:  # a NUL byte, a malformed URL, a name too long
        raise RequestError(f"video URL {url[:200]!r} is not a usable path") from e
    if not inside:
        raise RequestError(f"video path {raw!r} is outside the server's video root", 403)
    if not found:
        raise RequestError(f"video not found: {raw!r}")
    return path


def _time(part: dict[str, Any], key: str) -> float | None:
    v = part.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise RequestError(f"video '{key}' must be a number of seconds, 0 or more")
    return float(v)


def _video(part: dict[str, Any], root: str | os.PathLike | None) -> VideoRef:
    v = part["video_url"]
    start, end = _time(v, "start"), _time(v, "end")
    if start is not None and end is not None and end <= start:
        raise RequestError(f"video 'end' ({end:g}) must be after 'start' ({start:g})")
    return VideoRef(str(resolve_video(str(v.get("url", "")), root)), start, end)


def parse_message(m: Any, root: str | os.PathLike | None) -> Message:
    role = m.get("role") if isinstance(m, dict) else None
    if not isinstance(role, str) or role not in ROLES:
        raise RequestError("each message needs a role of system, developer, user or assistant")
    content = m.get("content")
    if isinstance(content, str):
        return Message(ROLES[role], content)
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
            video = _video(part, root)
        else:
            raise RequestError(f"unsupported content part {kind!r} (text, image_url, video_url)")
    return Message(ROLES[role], "\n".join(texts), tuple(images), video)


def parse_messages(messages: Any, root: str | os.PathLike | None) -> tuple[Message, ...]:
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    parsed = tuple(parse_message(m, root) for m in messages)
    if not any(m.role == "user" for m in parsed):
        raise RequestError("the chat has no user turn to answer")
    return parsed
