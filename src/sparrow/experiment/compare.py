"""The experiment's table, recomputed from the runs' predictions files: per variant the mean accuracy
under each condition over its seeds, video − text and video − swap, and each variant minus the baseline,
every difference with a paired bootstrap interval (``sparrow.caption_metrics.paired_bootstrap``).

Pairing: a question's score is its correctness averaged over the seeds both sides ran (the same seed
means the same initialisation and data order), and the interval resamples questions. It measures how
sure the difference is on this benchmark for these seeds; the spread between seeds is reported apart
(``accuracy_range``), since two or three seeds are too few to resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.caption_metrics import paired_bootstrap
from sparrow.experiment.errors import ExperimentError
from sparrow.io import LineError, iter_jsonl

Correct = dict[str, float]  # question id -> 1.0 / 0.0 (or a mean over seeds)
GAPS = ("text", "swap")  # video minus each of these, where the grid evaluates both


def read_correct(path: Path) -> Correct:
    """Question id -> correctness from a predictions.jsonl."""
    out: Correct = {}
    for _, row in iter_jsonl(path):
        if isinstance(row, LineError):
            raise ExperimentError(f"{row.source}:{row.line}: {row.reason}")
        if "correct" in row:
            out[str(row["id"])] = float(row["correct"])
    return out


class Predictions:
    """Every run's correctness per question: ``by[(variant, seed, condition)]``."""

    def __init__(self, results: Sequence[dict[str, Any]], out: Path):
        self.by: dict[tuple[str, int, str], Correct] = {}
        for r in results:
            for cond, c in r["conditions"].items():
                self.by[(r["variant"], int(r["seed"]), cond)] = read_correct(out / c["predictions"])

    def seeds(self, variant: str, condition: str) -> list[int]:
        return sorted(s for (v, s, c) in self.by if v == variant and c == condition)

    def question_means(self, variant: str, condition: str, seeds: Sequence[int]) -> Correct:
        """Correctness averaged over ``seeds``, on the questions every one of those runs answered."""
        runs = [self.by[(variant, s, condition)] for s in seeds if (variant, s, condition) in self.by]
        if not runs or len(runs) < len(seeds):
            return {}
        ids = set(runs[0]).intersection(*runs[1:])
        return {i: float(np.mean([r[i] for r in runs])) for i in sorted(ids)}


def paired(a: Correct, b: Correct, resamples: int, seed: int) -> dict[str, Any] | None:
    """mean(a − b) over the questions both have, with its paired bootstrap 95 % interval; None when
    they share no question."""
    ids = sorted(set(a) & set(b))
    if not ids:
        return None
    iv = paired_bootstrap({i: a[i] for i in ids}, {i: b[i] for i in ids}, resamples, seed=seed)
    return {
        "diff": iv.difference,
        "ci95": [iv.low, iv.high],
        "questions": iv.videos,  # the bootstrap's units are questions here
        "excludes_zero": iv.excludes_zero,
    }


def _variant_row(
    preds: Predictions,
    results: Sequence[dict[str, Any]],
    variant: str,
    baseline: str,
    conditions: Sequence[str],
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    mine = [r for r in results if r["variant"] == variant]
    row: dict[str, Any] = {"variant": variant, "seeds": sorted(int(r["seed"]) for r in mine)}
    row["accuracy"], row["accuracy_range"], row["n"] = {}, {}, {}
    for cond in conditions:
        blocks = [r["conditions"][cond] for r in mine if cond in r["conditions"]]
        if blocks:
            accs = [b["accuracy"] for b in blocks]
            row["accuracy"][cond] = float(np.mean(accs))
            row["accuracy_range"][cond] = [float(min(accs)), float(max(accs))]
            row["n"][cond] = int(blocks[0]["n"])
    row["gaps"] = {}
    if "video" in conditions:
        for k, other in enumerate(g for g in GAPS if g in conditions):
            seeds = sorted(set(preds.seeds(variant, "video")) & set(preds.seeds(variant, other)))
            a, b = preds.question_means(variant, "video", seeds), preds.question_means(variant, other, seeds)
            row["gaps"][f"video-{other}"] = paired(a, b, resamples, seed + k)
    row["vs_baseline"] = {}
    if variant != baseline:
        for k, cond in enumerate(conditions):
            seeds = sorted(set(preds.seeds(variant, cond)) & set(preds.seeds(baseline, cond)))
            a, b = preds.question_means(variant, cond, seeds), preds.question_means(baseline, cond, seeds)
            row["vs_baseline"][cond] = paired(a, b, resamples, seed + 10 + k)
    return row


def build_table(
    results: Sequence[dict[str, Any]],
    out: Path,
    variants: Sequence[str],
    baseline: str,
    conditions: Sequence[str],
    resamples: int = 1000,
) -> list[dict[str, Any]]:
    """One row per variant that has results, in the grid's order (``results``: the runs' item values)."""
    preds = Predictions(results, out)
    present = {r["variant"] for r in results}
    return [
        _variant_row(preds, results, v, baseline, conditions, resamples, seed=100 * k)
        for k, v in enumerate(variants)
        if v in present
    ]


def category_means(results: Sequence[dict[str, Any]], variant: str, condition: str) -> dict[str, float]:
    """Per-category accuracy of ``variant`` under ``condition``, averaged over its seeds."""
    cats: dict[str, list[float]] = {}
    for r in results:
        if r["variant"] == variant and condition in r["conditions"]:
            for cat, acc in r["conditions"][condition]["by_category"].items():
                cats.setdefault(cat, []).append(acc)
    return {c: float(np.mean(v)) for c, v in sorted(cats.items())}
