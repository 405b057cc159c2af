"""`sparrow eval`'s metrics by hand: accuracy, per-category and per-duration breakdowns, bootstrap
intervals and paired differences between two runs."""

from __future__ import annotations

import numpy as np
import pytest

from sparrow.eval.metrics import (
    bootstrap_ci,
    compute_metrics,
    duration_bucket,
    paired_block,
    paired_difference,
)

# ------------------------------------------------------------------------------------------- metrics


def test_metrics_by_hand():
    preds = [
        {"id": "a", "correct": True, "prediction": "A", "category": "x", "duration": 10.0},
        {"id": "b", "correct": False, "prediction": "B", "category": "x", "duration": 50.0},
        {"id": "c", "correct": True, "prediction": "A", "category": "y", "duration": 700.0},
        {"id": "d", "correct": False, "prediction": None, "category": "y", "duration": 100.0},
    ]
    m = compute_metrics(preds, buckets=(30, 120, 600), samples=500, seed=3)
    assert m["n"] == 4 and m["accuracy"] == 0.5 and m["unanswered"] == 1
    assert m["by_category"] == {
        "x": {"n": 2, "accuracy": 0.5, "ci95": m["by_category"]["x"]["ci95"]},
        "y": {"n": 2, "accuracy": 0.5, "ci95": m["by_category"]["y"]["ci95"]},
    }
    assert list(m["by_duration"]) == ["<30s", "30s-2m", ">=10m"]
    assert [v["accuracy"] for v in m["by_duration"].values()] == [1.0, 0.0, 1.0]
    lo, hi = m["ci95"]
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    assert compute_metrics(preds, samples=500, seed=3) == compute_metrics(preds, samples=500, seed=3)
    assert bootstrap_ci([True] * 7, 100, 0) == [1.0, 1.0]
    # A 95% interval of 200 coin flips at 0.5 is about +-0.07.
    lo, hi = bootstrap_ci([i % 2 == 0 for i in range(200)], 2000, 1)
    assert 0.41 < lo < 0.46 and 0.54 < hi < 0.59
    assert (
        duration_bucket(None) is None and duration_bucket(29.9) == "<30s" and duration_bucket(120) == "2m-10m"
    )


def test_paired_difference_and_block_by_hand():
    cats = ["c0", "c1"] * 50
    a = [{"id": f"q{i}", "correct": i < 60, "category": cats[i]} for i in range(100)]
    b = [{"id": f"q{i}", "correct": i < 30, "category": cats[i]} for i in range(100)]
    b.append({"id": "extra", "correct": True, "category": "c0"})  # answered by one side only: left out
    block = paired_block(a, b, samples=2000, seed=3)
    assert block["n"] == 100 and block["diff"] == pytest.approx(0.3)
    # Paired: only the 30 disagreeing questions vary, so the interval is narrow around 0.3.
    assert 0.2 < block["ci95"][0] < 0.3 < block["ci95"][1] < 0.4
    assert set(block["by_category"]) == {"c0", "c1"}
    for c, res in block["by_category"].items():
        ids = [i for i in range(100) if cats[i] == c]
        assert res["n"] == 50 and res["diff"] == pytest.approx(np.mean([(i < 60) - (i < 30) for i in ids]))
    same = paired_difference(a, a, samples=200)
    assert same["diff"] == 0 and same["ci95"] == [0.0, 0.0]
