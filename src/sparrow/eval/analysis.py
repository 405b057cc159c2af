"""Benchmark analysis: redundancy between benchmarks or subsets (R² of model scores), rank agreement,
and Apollo's scaling consistency between model sizes; with their plots."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.eval.errors import CurateError
from sparrow.eval.metrics import DEFAULT_BUCKETS, duration_bucket
from sparrow.eval.results import ResultTable
from sparrow.plots import pyplot


def r_squared(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Squared Pearson correlation (the R² of a least-squares line), None when undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    return r * r


def rank_agreement(x: Sequence[float], y: Sequence[float]) -> dict[str, float | None]:
    """Spearman rho, Kendall tau (tau-b, ties handled) and R² between two score vectors."""
    from scipy import stats

    out: dict[str, float | None] = {"spearman": None, "kendall": None, "r2": r_squared(x, y)}
    if len(x) >= 2 and np.std(x) > 0 and np.std(y) > 0:
        out["spearman"] = float(stats.spearmanr(x, y).statistic)
        out["kendall"] = float(stats.kendalltau(x, y).statistic)
    return out


# --------------------------------------------------------------------------------------- redundancy


def group_scores(
    table: ResultTable, by: str, buckets: Sequence[float] = DEFAULT_BUCKETS
) -> dict[str, dict[str, float]]:
    """Model accuracies (video condition) per group: ``by`` is "bench", "category" or "duration"."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, q in table.questions.items():
        if by == "bench":
            g = q.bench
        elif by == "category":
            g = q.category
        elif by == "duration":
            g = q.duration if isinstance(q.duration, str) else duration_bucket(q.duration, buckets)
        else:
            raise CurateError(f"unknown grouping {by!r}; use bench, category or duration")
        if g is not None:
            groups[str(g)].append(key)
    return {g: table.scores(keys) for g, keys in sorted(groups.items())}


def redundancy_matrix(scores: dict[str, dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """Pairwise R² of model scores between groups (models both groups share); NaN where undefined.
    A high R² means one group ranks models like the other: evaluating both adds little."""
    names = list(scores)
    mat = np.full((len(names), len(names)), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            common = [m for m in scores[a] if m in scores[b]]
            r2 = r_squared([scores[a][m] for m in common], [scores[b][m] for m in common])
            mat[i, j] = np.nan if r2 is None else r2
    return names, mat


def plot_heatmap(names: list[str], mat: np.ndarray, path: str | Path, title: str) -> None:
    plt = pyplot()
    n = len(names)
    fig, ax = plt.subplots(figsize=(2.2 + 0.8 * max(n, 2), 1.4 + 0.7 * max(n, 2)))
    im = ax.imshow(np.ma.masked_invalid(mat), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            v = mat[i, j]
            label = "–" if np.isnan(v) else f"{v:.2f}"
            ax.text(
                j, i, label, ha="center", va="center", color="white" if np.isnan(v) or v < 0.6 else "black"
            )
    fig.suptitle(title, fontsize=11)  # above the colour bar too, so the two never overlap
    fig.colorbar(im, ax=ax, label="R² of model scores", fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------------------------- consistency


def read_variant_scores(path: str | Path) -> dict[str, dict[str, float]]:
    """Scores of design variants at several model sizes: CSV ``variant,<size>,<size>...`` (wide), CSV
    ``variant,size,score`` (long) or JSON ``{variant: {size: score}}``. Returns {size: {variant: score}}."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"scores file {str(path)!r} does not exist")
    out: dict[str, dict[str, float]] = defaultdict(dict)
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise CurateError(f"{path}: expected an object {{variant: {{size: score}}}}")
        for variant, by_size in data.items():
            if not isinstance(by_size, dict):
                raise CurateError(f"{path}: variant {variant!r} must map sizes to scores")
            for size, score in by_size.items():
                out[str(size)][str(variant)] = float(score)
        return dict(out)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise CurateError(f"{path}: needs a header and at least one row")
    header = [h.strip() for h in rows[0]]
    try:
        if [h.lower() for h in header] == ["variant", "size", "score"]:
            for r in rows[1:]:
                if r:
                    out[r[1].strip()][r[0].strip()] = float(r[2])
        else:
            for r in rows[1:]:
                if r:
                    for size, v in zip(header[1:], r[1:], strict=False):
                        if v.strip():
                            out[size][r[0].strip()] = float(v)
    except (ValueError, IndexError) as e:
        raise CurateError(f"{path}: bad score row ({e})") from None
    return dict(out)


def consistency(small: dict[str, float], large: dict[str, float]) -> dict[str, Any]:
    """Apollo's scaling consistency: R² between the scores of the same design variants at two sizes.
    High R² means design decisions measured on the small model transfer to the large one."""
    common = [v for v in small if v in large]
    if len(common) < 3:
        raise CurateError(f"need at least 3 variants scored at both sizes, got {len(common)}")
    x, y = [small[v] for v in common], [large[v] for v in common]
    slope, intercept = np.polyfit(x, y, 1) if np.std(x) > 0 else (float("nan"), float("nan"))
    return {
        "variants": common,
        "small": x,
        "large": y,
        "slope": float(slope),
        "intercept": float(intercept),
    } | (rank_agreement(x, y))


def plot_consistency(res: dict[str, Any], path: str | Path, small_name: str, large_name: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    x, y = np.asarray(res["small"]), np.asarray(res["large"])
    ax.scatter(x, y, color="tab:blue", zorder=3)
    for v, a, b in zip(res["variants"], x, y, strict=True):
        ax.annotate(v, (a, b), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if not math.isnan(res["slope"]):
        xs = np.linspace(x.min(), x.max(), 10)
        ax.plot(xs, res["slope"] * xs + res["intercept"], color="tab:orange", lw=1.5)
    r2 = res["r2"]
    ax.set_title(f"Scaling consistency: R² = {r2:.3f}" if r2 is not None else "Scaling consistency")
    ax.set_xlabel(f"score at {small_name}")
    ax.set_ylabel(f"score at {large_name}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def consistency_from_file(
    path: str | Path, small: str | None = None, large: str | None = None
) -> tuple[str, str, dict[str, Any]]:
    """Scaling consistency between two sizes of a scores file (default: its first two sizes); returns
    the two size names and ``consistency``'s result."""
    by_size = read_variant_scores(path)
    sizes = list(by_size)
    if len(sizes) < 2:
        raise CurateError(f"{path}: needs scores at two sizes, found {sizes}")
    a, b = small or sizes[0], large or sizes[1]
    for s in (a, b):
        if s not in by_size:
            raise CurateError(f"size {s!r} not in {path} (sizes: {', '.join(sizes)})")
    return a, b, consistency(by_size[a], by_size[b])
