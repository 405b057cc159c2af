"""The server's settings: a plain dataclass, so the CLI reads its defaults without importing FastAPI."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """Each field's comment is also its ``sparrow serve`` option's help."""

    host: str = "127.0.0.1"  # Address to bind (loopback unless the user opens it up).
    port: int = 8000  # Port to listen on.
    video_root: str | None = None  # Videos may be named by path only inside this folder (default: no videos).
    max_tokens: int = 256  # Reply length when a request names none.
    max_new_tokens: int = 1024  # Longest reply a request may ask for (more: 400).
    request_timeout: float = 60.0  # Seconds one reply may take; a longer one is cut short.
    queue_size: int = 8  # Requests that may wait for the model; more get 429.
    shutdown_grace: float = 2.0  # On SIGTERM, seconds a running reply gets before it is cut.
    max_request_mb: float = 32.0  # Largest request body, in MB (more: 413).
    device: str = "cpu"  # cpu, cuda, cuda:1, ...

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or not 1 <= self.max_tokens <= self.max_new_tokens:
            raise ValueError(
                f"need 1 <= --max-tokens ({self.max_tokens}) <= --max-new-tokens ({self.max_new_tokens})"
            )
        if self.queue_size < 0:
            raise ValueError(f"--queue-size must be 0 or more, got {self.queue_size}")
        for name in ("request_timeout", "shutdown_grace", "max_request_mb"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if self.shutdown_grace > 4:
            raise ValueError("--shutdown-grace is at most 4 s: the server exits within 5 s of SIGTERM")
