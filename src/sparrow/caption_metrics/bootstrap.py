"""A paired bootstrap confidence interval for the difference of two caption sets' mean per-video
score against the same reference (e.g. refined captions vs raw ASR on CIDEr-D)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from sparrow.caption_metrics.cider import cider_d


@dataclass(frozen=True)
class Interval:
    """mean(a - b) over videos and its percentile interval; ``excludes_zero`` when both ends agree."""

    difference: float
    low: float
    high: float
    level: float
    videos: int
    resamples: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def paired_bootstrap(
    a: Mapping[str, float], b: Mapping[str, float], resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Resample videos with replacement (the same draw for both sets) and take the percentile interval
    of the mean difference. Both mappings must score the same videos."""
    if set(a) != set(b):
        raise ValueError("the two score sets must cover the same videos")
    if not a:
        raise ValueError("no videos to compare")
    keys = sorted(a)
    diff = np.array([a[k] - b[k] for k in keys], dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(diff.mean()), float(low), float(high), level, len(diff), resamples)


def cider_difference(
    a: Mapping[str, str],
    b: Mapping[str, str],
    references: Mapping[str, list[str]],
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """CIDEr-D(a) - CIDEr-D(b) per reference video (paragraph per video), with its bootstrap interval."""
    return paired_bootstrap(cider_d(a, references), cider_d(b, references), resamples, level, seed)
