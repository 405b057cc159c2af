"""Accuracy overall, per category and per duration bucket, each with a percentile bootstrap interval."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BUCKETS = (30.0, 120.0, 600.0)


def duration_bucket(duration: float | None, edges: Sequence[float] = DEFAULT_BUCKETS) -> str | None:
    """``"<30s"``, ``"30s-2m"``, ... for a duration in seconds (None when unknown)."""
    if duration is None:
        return None

    def fmt(s: float) -> str:
        return f"{s / 60:g}m" if s >= 60 and s % 60 == 0 else f"{s:g}s"

    edges = sorted(edges)
    if not edges or duration < edges[0]:
        return f"<{fmt(edges[0])}" if edges else "all"
    for a, b in zip(edges, edges[1:], strict=False):
        if duration < b:
            return f"{fmt(a)}-{fmt(b)}"
    return f">={fmt(edges[-1])}"


def bootstrap_ci(
    correct: Sequence[bool], samples: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Percentile bootstrap interval of the accuracy (resampling questions with replacement)."""
    c = np.asarray(correct, dtype=np.float64)
    if not len(c):
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = c[rng.integers(0, len(c), size=(samples, len(c)))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return [float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))]


def compute_metrics(
    preds: Sequence[dict[str, Any]],
    buckets: Sequence[float] = DEFAULT_BUCKETS,
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy overall, per category and per duration bucket, each with a bootstrap 95 % interval."""

    def block(items: list[dict[str, Any]], offset: int) -> dict[str, Any]:
        c = [bool(p["correct"]) for p in items]
        return {
            "n": len(c),
            "accuracy": float(np.mean(c)) if c else float("nan"),
            "ci95": bootstrap_ci(c, samples, seed + offset),
        }

    scored = [p for p in preds if "correct" in p]
    by_cat: dict[str, list] = defaultdict(list)
    by_dur: dict[str, list] = defaultdict(list)
    for p in scored:
        by_cat[str(p.get("category"))].append(p)
        b = duration_bucket(p.get("duration"), buckets)
        if b is not None:
            by_dur[b].append(p)
    order = [duration_bucket(e - 1e-9, buckets) for e in sorted(buckets)] + [
        duration_bucket(max(buckets), buckets)
    ]
    out = block(scored, 0)
    out["unanswered"] = sum(1 for p in scored if p.get("prediction") is None)
    out["by_category"] = {k: block(v, i + 1) for i, (k, v) in enumerate(sorted(by_cat.items()))}
    out["by_duration"] = {k: block(by_dur[k], 100 + i) for i, k in enumerate(order) if k in by_dur}
    out["bootstrap"] = {"samples": samples, "seed": seed, "level": 0.95}
    return out


def paired_difference(
    a: Sequence[dict[str, Any]],
    b: Sequence[dict[str, Any]],
    samples: int = 1000,
    seed: int = 0,
    category: str | None = None,
) -> dict[str, Any]:
    """Accuracy of predictions ``a`` minus predictions ``b`` on the questions both scored (matched by
    ``id``; with ``category``, only that category's), with a paired percentile bootstrap 95 % interval:
    questions are resampled together, so the interval of a difference between two conditions or models
    on one benchmark is much narrower than their two accuracies' intervals suggest."""
    pa = {p["id"]: p for p in a if "correct" in p}
    pb = {p["id"]: p for p in b if "correct" in p}
    ids = [i for i in pa if i in pb and (category is None or pa[i].get("category") == category)]
    d = np.asarray([float(pa[i]["correct"]) - float(pb[i]["correct"]) for i in ids], dtype=np.float64)
    if not len(d):
        return {"diff": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(samples, len(d)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return {"diff": float(d.mean()), "ci95": [float(lo), float(hi)], "n": len(d)}


def paired_block(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], samples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """``paired_difference`` overall and per category (``by_category``), as metrics.json holds it."""
    out = paired_difference(a, b, samples, seed)
    cats = sorted({str(p["category"]) for p in a if "correct" in p and p.get("category") is not None})
    out["by_category"] = {c: paired_difference(a, b, samples, seed + 1 + k, c) for k, c in enumerate(cats)}
    return out
