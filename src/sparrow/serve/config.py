"""The server's settings: a plain dataclass, so the CLI reads its defaults without importing FastAPI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """Each field's comment is also its ``sparrow serve`` option's help."""

    host: str = "127.0.0.1"  # Address to bind (loopback unless the user opens it up).
    port: int = 8000  # Port to listen on.
    video_root: str | None = None  # Videos may be named by path only inside this folder (default: no videos).
    max_tokens: int = 256  # Reply length when a request names none.
    device: str = "cpu"  # cpu, cuda, cuda:1, ...
