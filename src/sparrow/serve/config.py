"""The server's settings: a plain dataclass, so the CLI reads its defaults without importing FastAPI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # loopback unless the user opens it up
    port: int = 8000
    video_root: str | None = None  # videos by path are read only inside it; None: no videos
    max_tokens: int = 256  # default when a request names none
    device: str = "cpu"
