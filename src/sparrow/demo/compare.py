"""Paired comparisons between models and conditions, recomputed from the predictions files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparrow.demo.config import BASELINE_RUN, REFERENCE, DemoConfig, DemoError
from sparrow.demo.runs import final_name
from sparrow.io import LineError, iter_jsonl


def _by_id(path: Path) -> dict[str, dict[str, Any]]:
    rows = {}
    for _, p in iter_jsonl(path):
        if isinstance(p, LineError):
            raise DemoError(f"{p.source}:{p.line}: {p.reason}")
        rows[p["id"]] = p
    return rows


def paired_difference(
    a: Path, b: Path, samples: int = 1000, seed: int = 0, category: str | None = None
) -> dict[str, Any]:
    """Accuracy of predictions ``a`` minus predictions ``b`` (two predictions.jsonl files) on the questions
    both answered, with a paired bootstrap 95 % interval (``sparrow.eval.metrics.paired_difference``):
    questions are resampled together, so the interval of a difference between two models on one
    benchmark is much narrower than the two accuracies' intervals suggest."""
    from sparrow.eval.metrics import paired_difference as paired

    return paired(list(_by_id(a).values()), list(_by_id(b).values()), samples, seed, category)


def _pairs(metrics: dict[str, Any]) -> list[tuple[str, tuple[str, str], tuple[str, str], str | None]]:
    """(what, (model A, condition), (model B, condition), category or None) for every comparison."""
    final = final_name(metrics)
    pairs: list[tuple[str, tuple[str, str], tuple[str, str], str | None]] = []
    if REFERENCE in metrics:
        pairs.append(("training", (final, "video"), (REFERENCE, "video"), None))
        pairs.append(("training (text only)", (final, "text"), (REFERENCE, "text"), None))
    cats = list(metrics[final]["video"].get("by_category", {}))
    pairs.append(("seeing", (final, "video"), (final, "text"), None))
    pairs += [("seeing", (final, "video"), (final, "text"), cat) for cat in cats]
    # Video reliance: the same model asked every question with another question's video.
    pairs.append(("video reliance", (final, "video"), (final, "swap"), None))
    pairs += [("video reliance", (final, "video"), (final, "swap"), cat) for cat in cats]
    base = f"{BASELINE_RUN}-final"
    if base in metrics:
        pairs.append(("the mix", (final, "video"), (base, "video"), None))
    return pairs


def comparisons(cfg: DemoConfig, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The differences the report reads: what training added (final vs untrained), what seeing adds (video
    vs text only, overall and per category), how much the answers rest on the right video (video vs
    swap, overall and per category) and what the mix adds (final vs the video-only baseline)."""

    def pred(name: str, condition: str) -> Path:
        return cfg.out / "eval" / name / condition / "predictions.jsonl"

    out = []
    for k, (what, (a, ca), (b, cb), cat) in enumerate(_pairs(metrics)):
        if not (pred(a, ca).is_file() and pred(b, cb).is_file()):
            continue
        res = paired_difference(pred(a, ca), pred(b, cb), cfg.bootstrap, cfg.seed + 7 * k, cat)
        out.append(
            {"what": what, "a": a, "a_condition": ca, "b": b, "b_condition": cb, "category": cat, **res}
        )
    return out


def find(comps: list[dict[str, Any]], what: str, category: str | None = None) -> dict[str, Any] | None:
    """The comparison named ``what`` (overall, or for one category)."""
    return next((c for c in comps if c["what"] == what and c["category"] == category), None)


def ci_text(lo_hi: list[float]) -> str:
    return f"{lo_hi[0]:.3f} to {lo_hi[1]:.3f}"
