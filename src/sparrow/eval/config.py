"""Evaluation settings: the scoring method names, one condition's run (``EvalConfig``) and the whole
`sparrow eval` job (``EvalOptions``, whose defaults are the command's). Light to import: no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparrow.eval.conditions import CONDITIONS, check_condition
from sparrow.eval.errors import EvalError
from sparrow.eval.metrics import DEFAULT_BUCKETS

# The scoring methods (one function each in sparrow.eval.scoring, which describes them).
METHODS = ("loglik", "generate", "cloze", "cloze_norm")
CLOZE_METHODS = ("cloze", "cloze_norm")  # the bare question; each option's text is scored as the reply


@dataclass
class EvalConfig:
    """How one condition is evaluated."""

    condition: str = "video"
    method: str = "loglik"
    batch_size: int = 8
    max_new_tokens: int = 16
    sampling: Any = None  # SamplingConfig override; None = the checkpoint's
    media_root: str | None = None

    def __post_init__(self) -> None:
        check_condition(self.condition)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


@dataclass
class EvalOptions:
    """The `sparrow eval` job: a checkpoint under one or more conditions (the command's defaults)."""

    conditions: tuple[str, ...] = ("video",)
    method: str = EvalConfig.method
    sampling: str | None = None  # overrides of the checkpoint's SamplingConfig, "k=v,k=v"
    name: str | None = None
    batch_size: int = EvalConfig.batch_size
    max_new_tokens: int = EvalConfig.max_new_tokens
    device: str = "cpu"
    dtype: str | None = None
    media_root: str | None = None
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    bootstrap: int = 1000
    seed: int = 0
    overwrite: bool = False
    # CPU threads for torch while evaluating (None: leave torch's setting). Small models on a busy CPU
    # run many times faster on one thread than on several that spin-wait for each other.
    threads: int | None = None

    def validate(self) -> None:
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad or not self.conditions:
            raise EvalError(f"condition must be one of {', '.join(CONDITIONS)} (got {bad or 'none'})")
        if self.method not in METHODS:
            raise EvalError(f"method must be one of {', '.join(METHODS)} (got {self.method!r})")
        if self.batch_size < 1:
            raise EvalError("batch size must be at least 1")
        if not self.buckets:
            raise EvalError("duration buckets need at least one edge")

    def config(self, condition: str, sampling: Any) -> EvalConfig:
        return EvalConfig(
            condition, self.method, self.batch_size, self.max_new_tokens, sampling, self.media_root
        )
