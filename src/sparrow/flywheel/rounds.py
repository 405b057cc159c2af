"""Scoring a round: its trinity report read back, and paired bootstrap intervals of its per-video
CIDEr-D against the raw transcripts and against round 0 (the same scored videos, the same reference)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.caption_metrics import paired_bootstrap

ROUND_FILE = "round.json"  # written last: a round with this file is done and is not run again


@dataclass
class RoundResult:
    """One row of the flywheel's table: who wrote the captions, the trinity numbers, the intervals."""

    name: str  # asr | round-0 | round-1 | ...
    source: str  # the raw transcripts, the LLM, or the captioner trained on the previous round
    videos: int = 0
    failed: int = 0
    quantity: dict[str, Any] = field(default_factory=dict)
    diversity: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)
    vs_asr: dict[str, Any] | None = None  # paired bootstrap of CIDEr-D(round) - CIDEr-D(asr)
    vs_round0: dict[str, Any] | None = None
    seconds: float = 0.0
    per_video_cider: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoundResult:
        return cls(**d)


def read_trinity(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def round_result(
    name: str,
    source: str,
    trinity: dict[str, Any],
    baselines: dict[str, RoundResult],
    resamples: int,
    seed: int,
    **counts: Any,
) -> RoundResult:
    """The row of a round from its trinity report; ``baselines`` (``asr``, ``round-0``) it is compared to."""
    r = RoundResult(
        name,
        source,
        quantity=trinity.get("quantity") or {},
        diversity=trinity.get("diversity") or {},
        quality=trinity.get("quality") or {},
        slots=trinity.get("slots") or {},
        per_video_cider=trinity.get("per_video_cider") or {},
        **counts,
    )
    for key, attr in (("asr", "vs_asr"), ("round-0", "vs_round0")):
        base = baselines.get(key)
        if base is not None and base.name != name and base.per_video_cider and r.per_video_cider:
            interval = paired_bootstrap(r.per_video_cider, base.per_video_cider, resamples, seed=seed)
            setattr(r, attr, interval.to_dict())
    return r
