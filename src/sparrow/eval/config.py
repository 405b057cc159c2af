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
    # swap: row id -> the video it is asked with. None: ``swap_videos`` over the rows evaluated (pass the
    # whole benchmark's mapping when evaluating a part of it, so the pairing does not depend on the part).
    swap_videos: dict[str, str] | None = None
    swap_seed: int = 0  # seed of ``swap_videos`` when it is computed here

    def __post_init__(self) -> None:
        check_condition(self.condition)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


@dataclass
class EvalOptions:
    """The `sparrow eval` job: a checkpoint under one or more conditions. The defaults are the command's,
    and each field's comment is its option's help."""

    conditions: tuple[str, ...] = ("video",)
    # loglik (option-letter log-likelihood), generate (greedy reply + parsing), cloze (the bare question,
    # each option text scored as the reply; suits very small models) or cloze_norm (cloze per token).
    method: str = EvalConfig.method
    # Override the checkpoint's frame sampling, e.g. 'strategy=uniform,num_frames=16' or
    # 'fps=2,max_frames=64,timestamps=none' (fields of SamplingConfig).
    sampling: str | None = None
    name: str | None = None  # Model name in results and curation (default: from the checkpoint's folder).
    batch_size: int = EvalConfig.batch_size  # Questions per forward pass.
    max_new_tokens: int = EvalConfig.max_new_tokens  # Reply length cap (generate).
    device: str = "cpu"  # torch device, e.g. cpu or cuda.
    dtype: str | None = None  # Override the checkpoint dtype (float32, bfloat16, ...).
    media_root: str | None = None  # Resolve video paths here instead of next to the benchmark.
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    bootstrap: int = 1000  # Bootstrap resamples for the 95% CI.
    seed: int = 0  # Bootstrap seed.
    # Seed of the swap condition's derangement (which other video each question is asked with).
    swap_seed: int = 0
    overwrite: bool = False  # Discard saved results of an earlier run in the output folder.
    # torch CPU threads while evaluating (default: torch's setting). Small models on a busy CPU run many
    # times faster on one thread than on several that spin-wait for each other.
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

    def config(self, condition: str, sampling: Any, swap: dict[str, str] | None = None) -> EvalConfig:
        return EvalConfig(
            condition,
            self.method,
            self.batch_size,
            self.max_new_tokens,
            sampling,
            self.media_root,
            swap,
            self.swap_seed,
        )
