"""ApolloBench curation on synthetic correctness tables whose right answer is known by construction,
lmms-eval sample logs of several formats, redundancy matrices, scaling consistency, and the commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sparrow.eval.analysis import (
    consistency,
    group_scores,
    rank_agreement,
    read_variant_scores,
    redundancy_matrix,
)
from sparrow.eval.curate import CurateConfig, curate
from sparrow.eval.errors import CurateError
from sparrow.eval.results import (
    Result,
    ResultTable,
    load_results,
    parse_spec,
    read_lmms_samples,
    read_sparrow_predictions,
    split_task_condition,
)

MODELS = [f"m{i}" for i in range(6)]


def H(*counts: int) -> float:
    n = sum(counts)
    return -sum(c / n * math.log2(c / n) for c in counts if c)


def synthetic_table() -> tuple[list[Result], dict]:
    """6 models, 8 questions of bench "b".

    q0: 4/6 right from text only (> 50 %)          -> dropped, text-answerable
    q1: 3/6 right from text only (= 50 %, not more) -> kept
    q2: 5/6 right from the single frame            -> dropped, frame-answerable
    video answers (right = "A"): entropy by construction
    q1: 3 right, 3 "B"             -> H(3,3) = 1.000
    q3: 6 right                    -> 0
    q4: 2 right, 2 "B", 2 "C"      -> H(2,2,2) = 1.585
    q5: 3 right, 1 "B", 1 "C", 1 "D" -> H(3,1,1,1) = 1.792
    q6: 5 right, 1 "B"             -> H(5,1) = 0.650
    q7: 4 right, 2 "B"             -> H(4,2) = 0.918
    """
    rs: list[Result] = []
    cats = {"q0": "x", "q1": "x", "q2": "y", "q3": "x", "q4": "y", "q5": "x", "q6": "y", "q7": "y"}
    dur = {q: 10.0 * (i + 1) for i, q in enumerate(cats)}
    video = {
        "q0": "AAAAAA",
        "q1": "AAABBB",
        "q2": "AAAAAA",
        "q3": "AAAAAA",
        "q4": "AABBCC",
        "q5": "AAABCD",
        "q6": "AAAAAB",
        "q7": "AAAABB",
    }
    text_right = {"q0": 4, "q1": 3}
    frame_right = {"q2": 5}
    for q in cats:
        for i, m in enumerate(MODELS):
            pred = video[q][i]
            rs.append(Result(m, "video", "b", q, pred == "A", pred, cats[q], dur[q]))
            rs.append(Result(m, "text", "b", q, i < text_right.get(q, 0), None, cats[q], dur[q]))
            rs.append(Result(m, "frame", "b", q, i < frame_right.get(q, 0), None, cats[q], dur[q]))
    return rs, cats


def test_drops_text_and_frame_answerable_and_ranks_by_entropy():
    rs, _ = synthetic_table()
    report = curate(ResultTable(rs), CurateConfig(threshold=0.5))
    reasons = {d.qid: d.reason for d in report.decisions}
    assert reasons["q0"] == "text-answerable" and reasons["q2"] == "frame-answerable"
    assert reasons["q1"] == "kept"  # exactly 50 % is not "more than half"
    ent = {d.qid: d.entropy for d in report.decisions}
    assert ent["q1"] == pytest.approx(1.0) and ent["q3"] == 0.0
    assert ent["q4"] == pytest.approx(math.log2(3)) and ent["q5"] == pytest.approx(H(3, 1, 1, 1))
    assert [d.qid for d in report.kept] == ["q5", "q4", "q1", "q7", "q6", "q3"]
    assert [d.rank for d in report.kept] == [1, 2, 3, 4, 5, 6]
    d0 = next(d for d in report.decisions if d.qid == "q0")
    assert d0.text_share == pytest.approx(4 / 6) and d0.frame_share == 0.0


def test_top_k_overall_and_per_category():
    rs, cats = synthetic_table()
    top = curate(ResultTable(rs), CurateConfig(top_k=3))
    assert [d.qid for d in top.kept] == ["q5", "q4", "q1"]
    assert {d.qid for d in top.decisions if d.reason == "below top-k"} == {"q3", "q6", "q7"}
    per = curate(ResultTable(rs), CurateConfig(top_k=1, per_category=True))
    assert [(d.qid, cats[d.qid]) for d in per.kept] == [("q5", "x"), ("q4", "y")]
    # cost: 8 questions -> 3 kept; q_i lasts 10 (i + 1) s: 360 s -> q5 + q4 + q1 = 60 + 50 + 20 s
    assert top.cost["reduction_x"] == pytest.approx(8 / 3)
    assert top.cost["video_seconds_full"] == 360 and top.cost["video_seconds_kept"] == 130


def test_wrong_answers_count_as_one_outcome_without_predictions():
    rs, _ = synthetic_table()
    rs = [Result(r.model, r.condition, r.bench, r.qid, r.correct, None, r.category, r.duration) for r in rs]
    ent = {d.qid: d.entropy for d in curate(ResultTable(rs)).decisions}
    assert ent["q5"] == pytest.approx(1.0) and ent["q4"] == pytest.approx(H(2, 4))


def test_score_correlations_curated_vs_full():
    """Model m_i is right on question j iff i >= j % 6. Full scores: 2, 4, 6, 8, 9, 10 of 10. The top 4 by
    entropy are q3, q9 (3 right of 6: 1 bit), q2, q4 (4 or 2 right: 0.918 bits), where the models score
    0, 0, 1/4, 3/4, 1, 1: the same order with two ties."""
    rs = []
    for j in range(10):
        for i, m in enumerate(MODELS):
            right = i >= j % 6
            rs.append(Result(m, "video", "b", f"q{j}", right, "A" if right else "B", None, None))
    report = curate(ResultTable(rs), CurateConfig(top_k=4))
    assert [d.qid for d in report.kept] == ["q3", "q9", "q2", "q4"]
    full = [report.full_scores[m] for m in MODELS]
    cur = [report.curated_scores[m] for m in MODELS]
    assert full == [0.2, 0.4, 0.6, 0.8, 0.9, 1.0] and cur == [0.0, 0.0, 0.25, 0.75, 1.0, 1.0]
    # Ranks 1..6 vs 1.5, 1.5, 3, 4, 5.5, 5.5: rho = 16.5 / sqrt(17.5 * 16.5); tau-b = 13 / sqrt(15 * 13).
    assert report.correlation["spearman"] == pytest.approx(math.sqrt(16.5 / 17.5))
    assert report.correlation["kendall"] == pytest.approx(math.sqrt(13 / 15))
    assert report.correlation["r2"] == pytest.approx(np.corrcoef(full, cur)[0, 1] ** 2)
    assert "no text-only results" in " ".join(report.notes)
    # Hand-computed: x = 1..4, y = 1,3,2,4 -> r = 0.8, rho = 0.8, tau = (5 - 1) / 6
    agree = rank_agreement([1, 2, 3, 4], [1, 3, 2, 4])
    assert agree["r2"] == pytest.approx(0.64) and agree["spearman"] == pytest.approx(0.8)
    assert agree["kendall"] == pytest.approx(4 / 6)
    assert rank_agreement([1, 2, 3], [3, 2, 1])["spearman"] == pytest.approx(-1.0)
    assert rank_agreement([1, 1, 1], [1, 2, 3])["r2"] is None


def test_redundancy_matrix_by_category():
    """Scores on category y are a linear function of scores on x (R² 1); z is unrelated to x."""
    acc = {"x": [0.2, 0.4, 0.6, 0.8], "y": [0.1, 0.3, 0.5, 0.7], "z": [0.5, 0.25, 0.5, 0.25]}
    rs = []
    for cat, scores in acc.items():
        for mi, s in enumerate(scores):
            n_right = round(s * 20)
            for q in range(20):
                rs.append(
                    Result(
                        f"m{mi}",
                        "video",
                        "b",
                        f"{cat}{q}",
                        q < n_right,
                        None,
                        cat,
                        45.0 if cat == "z" else 5.0,
                    )
                )
    table = ResultTable(rs)
    scores = group_scores(table, "category")
    assert scores["x"] == {f"m{i}": pytest.approx(v) for i, v in enumerate(acc["x"])}
    names, mat = redundancy_matrix(scores)
    assert names == ["x", "y", "z"]
    assert (
        mat[0, 1] == pytest.approx(1.0)
        and mat[1, 0] == pytest.approx(1.0)
        and mat[0, 0] == pytest.approx(1.0)
    )
    x, z = np.array(acc["x"]), np.array(acc["z"])
    assert mat[0, 2] == pytest.approx(np.corrcoef(x, z)[0, 1] ** 2)
    dur = group_scores(table, "duration", (30.0,))
    assert sorted(dur) == ["<30s", ">=30s"]


def test_consistency_r2_and_score_files(tmp_path):
    small = {"a": 0.40, "b": 0.45, "c": 0.50, "d": 0.55}
    large = {"a": 0.52, "b": 0.58, "c": 0.64, "d": 0.70}  # exactly linear: R² 1
    res = consistency(small, large)
    assert res["r2"] == pytest.approx(1.0) and res["slope"] == pytest.approx(1.2)
    large["b"], large["c"] = 0.64, 0.58
    assert consistency(small, large)["spearman"] == pytest.approx(0.8)
    with pytest.raises(CurateError, match="at least 3"):
        consistency({"a": 1, "b": 2}, {"a": 1, "b": 2})

    (tmp_path / "wide.csv").write_text("variant,0.5B,7B\na,0.4,0.52\nb,0.45,0.58\nc,0.5,0.64\n")
    (tmp_path / "long.csv").write_text("variant,size,score\na,0.5B,0.4\na,7B,0.52\nb,0.5B,0.45\nb,7B,0.58\n")
    (tmp_path / "s.json").write_text(json.dumps({"a": {"0.5B": 0.4, "7B": 0.52}}))
    assert read_variant_scores(tmp_path / "wide.csv") == {
        "0.5B": {"a": 0.4, "b": 0.45, "c": 0.5},
        "7B": {"a": 0.52, "b": 0.58, "c": 0.64},
    }
    assert read_variant_scores(tmp_path / "long.csv")["7B"] == {"a": 0.52, "b": 0.58}
    assert read_variant_scores(tmp_path / "s.json") == {"0.5B": {"a": 0.4}, "7B": {"a": 0.52}}


# ------------------------------------------------------------------------------- lmms-eval sample logs


def _write_log(path: Path, lines: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_lmms_eval_sample_logs_videomme_and_text_only(tmp_path):
    # lmms-eval 0.7: flattened filtered_resps, no "doc", a per-task metric dict (Video-MME style).
    vm = _write_log(
        tmp_path / "qwen7b" / "20250101_120000_samples_videomme.jsonl",
        [
            {
                "doc_id": 0,
                "target": "C",
                "filtered_resps": "C",
                "doc_hash": "x",
                "input": "...",
                "videomme_perception_score": {
                    "question_id": "001-1",
                    "duration": "short",
                    "category": "Knowledge",
                    "answer": "C",
                    "pred_answer": "C",
                },
            },
            {
                "doc_id": 1,
                "target": "A",
                "filtered_resps": "B",
                "videomme_perception_score": {
                    "question_id": "001-2",
                    "duration": "short",
                    "category": "Film",
                    "answer": "A",
                    "pred_answer": "B",
                },
            },
        ],
    )
    r = read_lmms_samples(vm)
    assert [
        (x.model, x.condition, x.bench, x.qid, x.correct, x.prediction, x.category, x.duration) for x in r
    ] == [
        ("qwen7b", "video", "videomme", "001-1", True, "C", "Knowledge", "short"),
        ("qwen7b", "video", "videomme", "001-2", False, "B", "Film", "short"),
    ]
    # A text-only variant with a plain "acc" metric; the question id is the doc_id.
    txt = _write_log(
        tmp_path / "qwen7b" / "20250101_120000_samples_videomme_text.jsonl",
        [
            {"doc_id": 0, "target": "C", "filtered_resps": "C", "acc": 1.0},
            {"doc_id": 1, "target": "A", "filtered_resps": "D", "acc": 0.0},
        ],
    )
    r = read_lmms_samples(txt)
    assert [(x.bench, x.condition, x.qid, x.correct) for x in r] == [
        ("videomme", "text", "0", True),
        ("videomme", "text", "1", False),
    ]
    # A folder is searched recursively; a spec prefix overrides model and condition.
    assert len(load_results(str(tmp_path / "qwen7b"))) == 4
    spec = parse_spec(f"gpt@text:{vm}")
    assert (spec.model, spec.condition, spec.path) == ("gpt", "text", vm)
    assert {(x.model, x.condition) for x in load_results(spec)} == {("gpt", "text")}
    assert split_task_condition("mvbench_single_frame") == ("mvbench", "frame")
    assert split_task_condition("sparrow_world") == ("sparrow_world", "video")


def test_lmms_eval_multiple_choice_logs_without_a_metric(tmp_path):
    # Multiple choice without a metric: log-likelihoods (0.7.3 logs them as strings) vs the target index.
    mc = _write_log(
        tmp_path / "m" / "x_samples_mcbench_frame.jsonl",
        [
            {
                "doc_id": 0,
                "target": "2",
                "filtered_resps": ["(-3.0, False)", "(-2.5, False)", "(-0.5, True)"],
            },
            {"doc_id": 1, "target": "0", "filtered_resps": [[-1.0, False], [-0.2, True]]},
        ],
    )
    r = read_lmms_samples(mc)
    assert [(x.condition, x.correct, x.prediction) for x in r] == [
        ("frame", True, "2"),
        ("frame", False, "1"),
    ]


def test_lmms_eval_older_logs_and_unreadable_ones(tmp_path):
    # Older logs: nested [[reply]], a "doc" with an id, exact_match; a reply parsed against the target.
    old = _write_log(
        tmp_path / "old" / "y_samples_oldbench.jsonl",
        [
            {
                "doc_id": 5,
                "doc": {"id": "q-5", "category": "ocr"},
                "target": "B",
                "filtered_resps": [["B"]],
                "exact_match": 1.0,
            },
            {"doc_id": 6, "doc": {"id": "q-6"}, "target": "D", "filtered_resps": ["The answer is D."]},
            {
                "doc_id": 6,
                "doc": {"id": "q-6"},
                "target": "D",
                "filtered_resps": ["The answer is D."],
            },  # 2nd filter
        ],
    )
    r = read_lmms_samples(old, model="llava")
    assert [(x.model, x.qid, x.correct, x.category) for x in r] == [
        ("llava", "q-5", True, "ocr"),
        ("llava", "q-6", True, None),
    ]
    bad = _write_log(
        tmp_path / "z" / "d_samples_t.jsonl", [{"doc_id": 0, "target": "x", "filtered_resps": "no idea"}]
    )
    with pytest.raises(CurateError, match="cannot tell whether the answer is correct"):
        read_lmms_samples(bad)


# ------------------------------------------------------------------------------------------- commands


def _sparrow_run(d: Path, name: str, condition: str, preds: list[dict], bench: Path) -> None:
    d.mkdir(parents=True)
    (d / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    run = {"name": name, "condition": condition, "bench": bench.stem, "bench_path": str(bench)}
    (d / "run.json").write_text(json.dumps(run))


def test_curate_and_consistency_commands(tmp_path, capsys):
    from sparrow.cli import main

    rs, cats = synthetic_table()
    bench = tmp_path / "b.jsonl"
    bench.write_text(
        "".join(
            json.dumps({"id": q, "question": f"{q}?", "options": ["a", "b"], "answer": "A"}) + "\n"
            for q in cats
        )
    )
    runs = tmp_path / "runs"
    for m in MODELS:
        for cond in ("video", "frame", "text"):
            preds = [
                {
                    "id": r.qid,
                    "prediction": r.prediction,
                    "correct": r.correct,
                    "category": r.category,
                    "duration": r.duration,
                }
                for r in rs
                if r.model == m and r.condition == cond
            ]
            _sparrow_run(runs / m / cond, m, cond, preds, bench)
    out = tmp_path / "cur"
    with pytest.raises(SystemExit) as e:
        main(["curate", str(runs), "--out", str(out), "--top-k", "3"])
    assert e.value.code == 0
    doc = json.loads((out / "curation.json").read_text())
    assert doc["summary"]["kept"] == 3 and doc["summary"]["dropped_text_answerable"] == 1
    assert doc["cost"]["reduction_x"] == pytest.approx(8 / 3)
    assert [json.loads(x)["qid"] for x in (out / "kept.jsonl").read_text().splitlines()] == ["q5", "q4", "q1"]
    assert [json.loads(x)["id"] for x in (out / "curated_b.jsonl").read_text().splitlines()] == [
        "q5",
        "q4",
        "q1",
    ]
    assert set(doc["redundancy"]) == {"category", "duration"}
    with Image.open(out / "redundancy_category.png") as im:
        assert im.size[0] > 100 and im.size[1] > 100
        assert len({tuple(p) for p in np.asarray(im.convert("RGB")).reshape(-1, 3)[::97]}) > 5  # not blank
    assert (out / "scores.csv").read_text().splitlines()[0] == "model,full,curated"

    (tmp_path / "v.csv").write_text("variant,small,large\na,0.1,0.2\nb,0.2,0.4\nc,0.3,0.6\nd,0.4,0.8\n")
    with pytest.raises(SystemExit) as e:
        main(["consistency", str(tmp_path / "v.csv"), "--out", str(tmp_path / "cons")])
    assert e.value.code == 0
    cons = json.loads((tmp_path / "cons" / "consistency.json").read_text())
    assert cons["r2"] == pytest.approx(1.0) and (cons["small"], cons["large"]) == (
        [0.1, 0.2, 0.3, 0.4],
        [0.2, 0.4, 0.6, 0.8],
    )
    assert (tmp_path / "cons" / "consistency.png").stat().st_size > 5000

    with pytest.raises(SystemExit) as e:
        main(["curate", str(tmp_path / "nothing"), "--out", str(out)])
    assert e.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_results_of_older_runs_that_say_modality(tmp_path):
    """Before the eval inputs were called conditions, run.json said "modality"; such runs still read."""
    d = tmp_path / "old" / "frame"
    d.mkdir(parents=True)
    (d / "predictions.jsonl").write_text(json.dumps({"id": "q1", "correct": True, "prediction": "A"}) + "\n")
    (d / "run.json").write_text(json.dumps({"name": "m", "modality": "frame", "bench": "b"}))
    (r,) = read_sparrow_predictions(d / "predictions.jsonl")
    assert (r.model, r.condition, r.bench, r.qid, r.correct) == ("m", "frame", "b", "q1", True)
    with pytest.raises(CurateError, match="unknown condition"):
        ResultTable([Result("m", "audio", "b", "q1", True)])
