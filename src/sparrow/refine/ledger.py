"""What a refinement run spent: calls (retries included), tokens, seconds and cache hits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sparrow.chat.base import Response


@dataclass
class Ledger:
    requests: int = 0
    calls: int = 0
    cache_hits: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # summed over requests (concurrent requests overlap)
    frame_errors: int = 0

    def add(self, r: Response) -> None:
        self.requests += 1
        self.calls += r.calls
        self.cache_hits += r.cached
        self.failed += r.error is not None
        self.prompt_tokens += r.prompt_tokens
        self.completion_tokens += r.completion_tokens
        self.seconds += r.seconds

    def merge(self, other: dict[str, Any]) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + other.get(f.name, 0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(d["seconds"], 3)
        return d
