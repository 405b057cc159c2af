"""A reduced demo end to end: world -> synth -> training -> eval -> curation -> report.html, checked for
consistency with the metrics files, resumption, and in a real headless browser."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from sparrow.demo import EVAL_MODALITIES, DemoConfig, run_demo, video_only_variant

QUICK = dict(
    world_overrides={"videos": {"train": 10, "val": 2, "test": 5}}, max_steps=2, bootstrap=200, workers=2
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(out=out, threads=1, **QUICK)
    summary = run_demo(cfg)
    return out, summary


def test_every_step_wrote_its_outputs(demo):
    out, summary = demo
    assert (out / "world" / "bench_test.jsonl").is_file()
    assert (out / "world" / "synth" / "samples.jsonl").is_file()
    for run in ("apollo-3stage", "video-only"):
        assert (out / "runs" / run / "final" / "config.json").is_file()
        assert (out / "runs" / run / "mixture_report.json").is_file()
    # Three stage checkpoints of the main run + the baseline: four models, each under three modalities.
    assert len(summary["metrics"]) == 4
    for name, by_mod in summary["metrics"].items():
        assert set(by_mod) == set(EVAL_MODALITIES)
        for mod in EVAL_MODALITIES:
            assert (out / "eval" / name / mod / "predictions.jsonl").is_file()
    assert (out / "curate" / "curation.json").is_file()
    assert Path(summary["report"]) == out / "report.html"


def test_report_is_consistent_with_the_metrics_files(demo):
    out, summary = demo
    html = (out / "report.html").read_text(encoding="utf-8")
    for name, by_mod in summary["metrics"].items():
        for mod in EVAL_MODALITIES:
            m = json.loads((out / "eval" / name / mod / "metrics.json").read_text())
            preds = [
                json.loads(x)
                for x in (out / "eval" / name / mod / "predictions.jsonl").read_text().splitlines()
            ]
            # The metrics file agrees with the predictions it was computed from ...
            assert m["n"] == len(preds)
            assert m["accuracy"] == pytest.approx(sum(p["correct"] for p in preds) / len(preds))
            # ... the summary agrees with the metrics file, and the report prints that row.
            assert by_mod[mod]["accuracy"] == pytest.approx(m["accuracy"])
            row = f"<td>{name}</td><td>{mod}</td><td>{m['n']}</td><td>{m['accuracy']:.3f}</td>"
            assert row in html
    cur = json.loads((out / "curate" / "curation.json").read_text())
    assert cur["summary"]["questions"] == summary["metrics"]["apollo-stage1-align"]["video"]["n"]
    assert f"<td>kept</td><td>{cur['summary']['kept']}</td>" in html


def test_report_embeds_every_figure_as_a_decodable_png(demo):
    out, _ = demo
    html = (out / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'data-source="([^"]+)"', html)
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == len(sources) and len(uris) >= 6
    expected = {
        "world_frames.png",
        "synth_frames.png",
        "accuracy_by_modality.png",
        "accuracy_by_category.png",
    }
    assert expected <= set(sources)
    assert any(s.startswith("loss_") for s in sources)
    assert any(s.startswith("redundancy_") for s in sources)
    for uri in uris:
        img = Image.open(io.BytesIO(base64.b64decode(uri)))
        img.load()
        assert img.width > 50 and img.height > 50
    for name in expected:
        assert (out / "figures" / name).is_file()


def test_rerun_resumes_without_redoing_work(demo):
    out, summary = demo
    metrics_log = (out / "runs" / "apollo-3stage" / "metrics.jsonl").read_bytes()
    preds = (out / "eval" / "apollo-stage3-finetune" / "video" / "predictions.jsonl").read_bytes()
    again = run_demo(DemoConfig(out=out, threads=1, **QUICK))
    assert again["metrics"] == summary["metrics"]
    assert (out / "runs" / "apollo-3stage" / "metrics.jsonl").read_bytes() == metrics_log
    assert (out / "eval" / "apollo-stage3-finetune" / "video" / "predictions.jsonl").read_bytes() == preds


def test_video_only_variant_drops_synthetic_and_text_sources():
    from sparrow.demo import default_recipe
    from sparrow.train.recipe import Recipe

    recipe = Recipe.from_yaml(default_recipe())
    names = {s.name for st in recipe.stages for s in st.mixture.sources}
    assert {"synthetic", "text"} & names, "the shipped recipe should mix synthetic or text data in"
    base = video_only_variant(recipe)
    for st in base.stages:
        assert not {s.name for s in st.mixture.sources} & {"synthetic", "text"}
    assert [s.name for s in base.stages] == [s.name for s in recipe.stages]


def test_report_loads_in_headless_chromium(demo):
    from browser import check_page, find_or_install_chromium

    chromium, why = find_or_install_chromium()
    if chromium is None:
        pytest.skip(why)
    out, _ = demo
    page = check_page(chromium, (out / "report.html").resolve().as_uri())
    assert page.title.startswith("Sparrow demo")
    assert page.console_errors == []
    assert page.images >= 6
    assert page.broken_images == []
