"""A reduced demo end to end: world -> synth -> training -> eval -> curation -> report.html, checked for
consistency with the metrics files, resumption, and in a real headless browser."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sparrow.demo import (
    REFERENCE,
    DemoConfig,
    DemoError,
    default_recipe,
    paired_difference,
    run_demo,
    scale_steps,
    video_only_variant,
)
from sparrow.eval.conditions import CONDITIONS
from sparrow.jobs.hooks import StepHooks

QUICK = dict(
    world_overrides={"videos": {"train": 10, "val": 2, "test": 6}}, max_steps=2, bootstrap=200, workers=2
)
MODELS = {
    REFERENCE,
    "apollo-stage1-align",
    "apollo-stage2-video",
    "apollo-stage3-finetune",
    "video-only-final",
}


def _preds(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    events: list[str] = []
    cfg = DemoConfig(out=out, threads=1, **QUICK)
    summary = run_demo(cfg, StepHooks(step=events.append))
    return out, summary, events


def test_every_step_wrote_its_outputs(demo):
    out, summary, events = demo
    assert events[:4] == ["world", "synth", "train apollo-3stage", "train video-only"]
    assert (out / "world" / "bench_test.jsonl").is_file()
    assert (out / "world" / "synth" / "samples.jsonl").is_file()
    for run in ("apollo-3stage", "video-only"):
        assert (out / "runs" / run / "final" / "config.json").is_file()
        assert (out / "runs" / run / "mixture_report.json").is_file()
    # The untrained reference, three stage checkpoints of the main run and the baseline, each under the
    # four conditions (video, frame, text, swap); swap asks each question with another test video.
    assert set(summary["metrics"]) == MODELS
    for by_cond in summary["metrics"].values():
        assert set(by_cond) == set(CONDITIONS)
    for name in MODELS:
        for cond in CONDITIONS:
            run = json.loads((out / "eval" / name / cond / "run.json").read_text())
            assert run["method"] == "cloze_norm" and run["condition"] == cond
    assert summary["final_model"] == "apollo-stage3-finetune"
    swap = _preds(out / "eval" / "apollo-stage3-finetune" / "swap" / "predictions.jsonl")
    own = {p["id"]: p["video"] for p in map(json.loads, (out / "world" / "bench_test.jsonl").open())}
    assert swap and all(p["video_shown"] != own[p["id"]] for p in swap)
    m = json.loads((out / "eval" / "apollo-stage3-finetune" / "swap" / "metrics.json").read_text())
    assert m["video_reliance"]["n"] == len(swap)
    assert (out / "curate" / "curation.json").is_file()
    assert Path(summary["report"]) == out / "report.html"


def test_untrained_reference_is_the_recipe_model_before_training(demo):
    from safetensors.numpy import load_file

    out, _, _ = demo
    ref = json.loads((out / "runs" / REFERENCE / "config.json").read_text())
    final = json.loads((out / "runs" / "apollo-3stage" / "final" / "config.json").read_text())
    # Same architecture and the last stage's frame sampling (112 px), so both are scored identically.
    assert ref == final
    assert ref["model"]["sampling"]["image_size"] == 112

    def weights(ckpt: Path) -> dict[str, np.ndarray]:
        # Every part's file (connector.safetensors, lm/model.safetensors, ...), keyed "part.name".
        out: dict[str, np.ndarray] = {}
        for f in sorted(ckpt.rglob("*.safetensors")):
            part = f.relative_to(ckpt).parts[0].removesuffix(".safetensors")
            out.update({f"{part}.{k}": v for k, v in load_file(f).items()})
        return out

    w_ref = weights(out / "runs" / REFERENCE)
    w_fin = weights(out / "runs" / "apollo-3stage" / "final")
    assert set(w_ref) == set(w_fin)
    # Training moved the trained parts; the frozen-throughout parts kept their initial values.
    moved = [k for k in w_ref if not np.array_equal(w_ref[k], w_fin[k])]
    assert any(k.startswith("lm.") for k in moved) and any(k.startswith("connector.") for k in moved)
    # The reference is the model training started from: the tower is frozen in every stage, so after
    # stage 1 it still holds the trainer's step-0 values, and the reference must hold them too.
    w_align = weights(out / "runs" / "apollo-3stage" / "stage1-align")
    frozen = [k for k in w_ref if k.startswith("vision.")]
    assert frozen and [k for k in frozen if not np.array_equal(w_ref[k], w_align[k])] == []
    # The randomly initialised parts (connector, LM) are the trainer's initial model (same seed formula).
    from sparrow.demo.recipes import load_recipe
    from sparrow.train.initial_model import initial_model

    model, _ = initial_model(load_recipe(DemoConfig(out=out, **QUICK)))
    state = {n: p.detach().numpy() for n, p in model.state_dict().items()}
    lm = [k for k in w_ref if k.startswith("lm.")]
    assert lm and all(np.array_equal(w_ref[k], state[k]) for k in lm if k in state)
    assert sum(k in state for k in lm) > len(lm) // 2


def test_report_is_consistent_with_the_metrics_files(demo):
    out, summary, _ = demo
    html = (out / "report.html").read_text(encoding="utf-8")
    for name, by_cond in summary["metrics"].items():
        for cond in CONDITIONS:
            m = json.loads((out / "eval" / name / cond / "metrics.json").read_text())
            preds = _preds(out / "eval" / name / cond / "predictions.jsonl")
            # The metrics file agrees with the predictions it was computed from ...
            assert m["n"] == len(preds)
            assert m["accuracy"] == pytest.approx(sum(p["correct"] for p in preds) / len(preds))
            # ... the summary agrees with the metrics file, and the report prints that row.
            assert by_cond[cond]["accuracy"] == pytest.approx(m["accuracy"])
            row = f"<td>{name}</td><td>{cond}</td><td>{m['n']}</td><td>{m['accuracy']:.3f}</td>"
            assert row in html
    cur = json.loads((out / "curate" / "curation.json").read_text())
    assert cur["summary"]["questions"] == summary["metrics"]["apollo-stage1-align"]["video"]["n"]
    assert REFERENCE not in cur["models"]  # curated with the trained checkpoints only
    assert f"<td>kept</td><td>{cur['summary']['kept']}</td>" in html
    # The reading quotes the numbers of the files.
    final = summary["metrics"]["apollo-stage3-finetune"]["video"]
    assert f"{final['accuracy']:.3f} of the {final['n']} test questions" in summary["reading"][0]
    assert summary["reading"][0] in html.replace("&#x27;", "'")


def test_paired_differences_are_recomputed_from_the_predictions(demo):
    out, summary, _ = demo
    comps = summary["comparisons"]
    whats = {(c["what"], c["category"]) for c in comps}
    assert {("training", None), ("seeing", None), ("video reliance", None), ("the mix", None)} <= whats
    # video reliance per category too, each the final model's video minus its swap predictions
    video = json.loads((out / "eval" / "apollo-stage3-finetune" / "video" / "metrics.json").read_text())
    cats = set(video["by_category"])
    assert {c for w, c in whats if w == "video reliance"} == cats | {None}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Video reliance of apollo-stage3-finetune" in html
    for c in comps:
        a = {p["id"]: p for p in _preds(out / "eval" / c["a"] / c["a_condition"] / "predictions.jsonl")}
        b = {p["id"]: p for p in _preds(out / "eval" / c["b"] / c["b_condition"] / "predictions.jsonl")}
        ids = [i for i in a if i in b and (c["category"] is None or a[i]["category"] == c["category"])]
        diff = np.mean([a[i]["correct"] - b[i]["correct"] for i in ids])
        assert c["n"] == len(ids) and c["diff"] == pytest.approx(diff)
        assert c["ci95"][0] <= c["diff"] + 1e-9 and c["diff"] <= c["ci95"][1] + 1e-9


def test_paired_bootstrap_on_known_predictions(tmp_path):
    def write(name, correct):
        p = tmp_path / f"{name}.jsonl"
        p.write_text("".join(json.dumps({"id": f"q{i}", "correct": c}) + "\n" for i, c in enumerate(correct)))
        return p

    # A is right on 60 of 100 questions, B on the same 30 of them plus none other: A - B = 0.3 exactly.
    a = write("a", [i < 60 for i in range(100)])
    b = write("b", [i < 30 for i in range(100)])
    res = paired_difference(a, b, samples=2000, seed=1)
    assert res["n"] == 100 and res["diff"] == pytest.approx(0.3)
    # Paired: only the 30 disagreeing questions vary, so the interval is narrow around 0.3.
    assert 0.2 < res["ci95"][0] < 0.3 < res["ci95"][1] < 0.4
    same = paired_difference(a, a, samples=200)
    assert same["diff"] == 0 and same["ci95"] == [0.0, 0.0]


def test_cloze_norm_divides_each_option_score_by_its_tokens(demo):
    from sparrow.eval.bench import read_bench
    from sparrow.eval.config import EvalConfig
    from sparrow.eval.evaluate import evaluate_rows
    from sparrow.model import load_pretrained

    out, _, _ = demo
    world = out / "world"
    rows, _ = read_bench(world / "bench_test.jsonl")
    rows = rows[:6]
    model, proc = load_pretrained(out / "runs" / "apollo-3stage" / "final")
    got = {}
    for method in ("cloze", "cloze_norm"):
        cfg = EvalConfig(condition="text", method=method, batch_size=3)
        got[method] = [r for batch in evaluate_rows(model, proc, rows, world, cfg) for r in batch]
    for row, s, n in zip(rows, got["cloze"], got["cloze_norm"], strict=True):
        lens = [len(proc.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in row.options]
        for k, letter in enumerate("ABCD"[: len(row.options)]):
            assert n["scores"][letter] == pytest.approx(s["scores"][letter] / lens[k], rel=1e-5)
        assert n["prediction"] == max(n["scores"], key=n["scores"].get)


def test_report_embeds_every_figure_as_a_decodable_png(demo):
    out, _, _ = demo
    html = (out / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'data-source="([^"]+)"', html)
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == len(sources) and len(uris) >= 8
    expected = {
        "world_frames_1.png",
        "world_frames_2.png",
        "synth_frames.png",
        "accuracy_by_condition.png",
        "accuracy_by_category.png",
    }
    assert expected <= set(sources)
    assert any(s.startswith("loss_") for s in sources)
    assert any(s.startswith("redundancy_") for s in sources)
    for uri in uris:
        img = Image.open(io.BytesIO(base64.b64decode(uri)))
        img.load()
        assert img.width > 50 and img.height > 50
        # not a blank canvas
        assert np.asarray(img.convert("L")).std() > 5
    for name in expected:
        assert (out / "figures" / name).is_file()


def test_rerun_skips_finished_steps_and_changes_redo_only_what_they_touch(demo):
    out, summary, _ = demo
    metrics_log = (out / "runs" / "apollo-3stage" / "metrics.jsonl").read_bytes()
    preds = (out / "eval" / "apollo-stage3-finetune" / "video" / "predictions.jsonl").read_bytes()
    events: list[str] = []
    again = run_demo(DemoConfig(out=out, threads=1, **QUICK), StepHooks(step=events.append))
    assert [e for e in events if e != "report"] == [
        f"{s}: done earlier, skipped" for s in ("world", "synth", "train", "eval", "curate")
    ]
    assert again["metrics"] == summary["metrics"] and again["comparisons"] == summary["comparisons"]
    assert (out / "runs" / "apollo-3stage" / "metrics.jsonl").read_bytes() == metrics_log
    assert (out / "eval" / "apollo-stage3-finetune" / "video" / "predictions.jsonl").read_bytes() == preds
    # Other training settings would mix two runs in one folder: refused, with what to do.
    with pytest.raises(DemoError, match="other train settings.*--overwrite"):
        run_demo(DemoConfig(out=out, threads=1, **{**QUICK, "max_steps": 3}))
    # Another scoring method only redoes evaluation and curation.
    events.clear()
    loglik = run_demo(
        DemoConfig(out=out, threads=1, eval_method="loglik", **QUICK), StepHooks(step=events.append)
    )
    assert events[:3] == [f"{s}: done earlier, skipped" for s in ("world", "synth", "train")]
    run = json.loads((out / "eval" / "apollo-stage3-finetune" / "video" / "run.json").read_text())
    assert run["method"] == "loglik" and loglik["method"] == "loglik"


def test_recipe_variants():
    from sparrow.train.recipe import Recipe

    recipe = Recipe.from_yaml(default_recipe())
    names = {s.name for st in recipe.stages for s in st.mixture.sources}
    assert {"synthetic", "text"} & names, "the shipped recipe should mix synthetic or text data in"
    base = video_only_variant(recipe)
    for st in base.stages:
        assert not {s.name for s in st.mixture.sources} & {"synthetic", "text"}
    assert [s.name for s in base.stages] == [s.name for s in recipe.stages]
    half = scale_steps(recipe, 0.5)
    assert [s.steps for s in half.stages] == [max(1, round(s.steps * 0.5)) for s in recipe.stages]
    assert [s.steps for s in recipe.stages] != [s.steps for s in half.stages]  # the original is untouched


def test_report_loads_in_headless_chromium(demo):
    from browser import check_page, find_or_install_chromium

    chromium, why = find_or_install_chromium()
    if chromium is None:
        pytest.skip(why)
    out, _, _ = demo
    page = check_page(chromium, (out / "report.html").resolve().as_uri())
    assert page.title.startswith("Sparrow demo")
    assert page.console_errors == []
    assert page.images >= 8
    assert page.broken_images == []
