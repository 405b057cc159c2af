"""The one interface every chat backend has: a :class:`Request` (chat messages with text and
optional images or a video segment, decoding settings, a seed) in, a :class:`Response` out.

``complete`` takes a batch and returns one response per request, in order; a request that fails
(timeout, garbage, HTTP 500 after retries) comes back with ``error`` set and never fails the others.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any


class BackendError(RuntimeError):
    """A backend cannot be built or used at all (bad model path, missing key, unsupported input)."""


@dataclass(frozen=True)
class Decoding:
    """How a reply is generated (not how frames are sampled: that is ``sparrow.video``)."""

    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_tokens: int = 256

    def validate(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1:
            raise BackendError("decoding needs temperature >= 0, 0 < top_p <= 1 and max_tokens >= 1")


@dataclass(frozen=True)
class VideoRef:
    """A video (or a segment of it, seconds) for backends that see video."""

    path: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    text: str
    images: tuple[bytes, ...] = ()  # encoded PNG / JPEG
    video: VideoRef | None = None

    def key(self) -> dict[str, Any]:
        """What identifies the message in the cache key (images by their sha256)."""
        return {
            "role": self.role,
            "text": self.text,
            "images": [hashlib.sha256(b).hexdigest() for b in self.images],
            "video": asdict(self.video) if self.video else None,
        }


@dataclass(frozen=True)
class Request:
    messages: tuple[Message, ...]
    decoding: Decoding = field(default_factory=Decoding)
    seed: int = 0
    template: str = ""  # version hash of the template that rendered it (part of the cache key)

    def key(self) -> dict[str, Any]:
        return {
            "messages": [m.key() for m in self.messages],
            # stored under its old name so that response caches written before the rename still hit
            "sampling": asdict(self.decoding),
            "seed": self.seed,
            "template": self.template,
        }


@dataclass
class Response:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False
    calls: int = 0  # backend calls made for it (retries included); 0 when served from the cache
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend:
    """Base class: subclasses set ``name`` and ``model`` and implement ``complete``."""

    name = "backend"
    model = ""
    greedy_only = False  # True: temperature > 0 is refused

    @property
    def identity(self) -> str:
        """What names the model in cache keys (a backend whose ``model`` is only a name adds more)."""
        return self.model

    def complete(self, requests: list[Request]) -> list[Response]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections or models."""


def image_mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    raise BackendError("images must be PNG or JPEG bytes")


def data_url(data: bytes) -> str:
    return f"data:{image_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for dry runs and backends that report none."""
    return math.ceil(len(text) / 4)
