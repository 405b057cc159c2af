"""``sparrow flywheel-losses`` on a small world: one tiny captioner per loss and seed trained a few steps
on the raw transcripts, the per-run and paired CIDEr-D numbers checked by hand, resume without training,
and the refusal of bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_flywheel import WORLD
from typer.testing import CliRunner

from sparrow.flywheel.config import FlywheelConfig, FlywheelError
from sparrow.flywheel.loss_study import LossRun, loss_study, mean_interval, reading, summarize
from sparrow.flywheel.rounds import RoundResult
from sparrow.jobs.hooks import StepHooks
from sparrow.world.config import preset_config
from sparrow.world.generate import generate_world

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = FlywheelConfig(videos=6, human_share=0.34, steps=2, max_new_tokens=4, vendi=False, resamples=200)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fwl") / "world"
    generate_world(out, config=preset_config("tiny", 3, **WORLD), workers=1)
    return out


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def check_run(r, root: Path, data: Path, reference: dict) -> None:
    """A run wrote its captions, records and numbers, and trained with its own loss and seed."""
    rdir = root / r.name
    assert r.scores.failed == 0 and r.scores.videos == len(reference) and r.scores.seconds > 0
    assert set(json.loads((rdir / "caption.json").read_text())) <= set(reference)
    assert (data / f"losses-{r.name}.jsonl").is_file()
    assert json.loads((rdir / "result.json").read_text()) == r.to_dict()
    assert set(r.per_video_cider) == set(reference)
    assert (
        r.cider_d["mean"]
        == pytest.approx(r.quality["cider_d"])
        == pytest.approx(mean(r.per_video_cider.values()))
    )
    assert r.cider_d["low"] <= r.cider_d["mean"] <= r.cider_d["high"]
    run = json.loads((rdir / "captioner" / "run.json").read_text())
    pretrain, finetune = run["recipe"]["stages"]
    assert pretrain["loss"]["name"] == r.loss and finetune["loss"]["name"] == "ce"
    assert run["recipe"]["seed"] == r.seed and run["max_steps"] == 2  # the same budget for every run
    assert pretrain["mixture"]["sources"][0]["path"] == str((data / "asr.jsonl").resolve())  # noisy ASR
    logged = [json.loads(x) for x in (rdir / "captioner" / "metrics.jsonl").read_text().splitlines()]
    pretrain_logged = [m for m in logged if m.get("stage") == 1]
    assert [m["step"] for m in pretrain_logged] == [1, 2]
    # the trainer logs AdaTaiLr's tail weighting only when it trains with it
    assert all(("gamma" in m) == (r.loss == "adatailr") for m in pretrain_logged)


def test_loss_study_numbers_report_and_resume(world, tmp_path):
    steps: list[str] = []
    study = loss_study(world, tmp_path, CFG, seeds=(0, 1), hooks=StepHooks(step=steps.append))
    root, data = tmp_path / "losses", tmp_path / "data"
    reference = json.loads((data / "reference.json").read_text())
    assert len(reference) == 4
    assert [r.name for r in study.runs] == ["ce-seed0", "ce-seed1", "adatailr-seed0", "adatailr-seed1"]
    for r in study.runs:
        check_run(r, root, data, reference)
    assert any(s.startswith("adatailr, seed 1: training") for s in steps)
    # per loss: the mean, min and max of the runs' CIDEr-D
    ce = [study.run("ce", s).quality["cider_d"] for s in (0, 1)]
    assert study.losses["ce"]["cider_d"] == pytest.approx(mean(ce))
    assert (study.losses["ce"]["min"], study.losses["ce"]["max"]) == (min(ce), max(ce))
    # per seed: the paired difference is the difference of the runs' means, by hand from the videos
    diffs = {d["seed"]: d for d in study.differences}
    assert set(diffs) == {0, 1, "pooled"}
    for s in (0, 1):
        a, b = study.run("adatailr", s), study.run("ce", s)
        by_hand = mean(a.per_video_cider[v] - b.per_video_cider[v] for v in reference)
        assert diffs[s]["difference"] == pytest.approx(by_hand)
        assert diffs[s]["difference"] == pytest.approx(a.quality["cider_d"] - b.quality["cider_d"])
        assert diffs[s]["low"] <= diffs[s]["difference"] <= diffs[s]["high"] and diffs[s]["videos"] == 4
    pooled = diffs["pooled"]["difference"]
    assert pooled == pytest.approx(mean(diffs[s]["difference"] for s in (0, 1)))
    assert pooled == pytest.approx(study.losses["adatailr"]["cider_d"] - study.losses["ce"]["cider_d"])
    assert json.loads((root / "study.json").read_text()) == json.loads(json.dumps(study.to_dict()))
    page = (root / "report.html").read_text()
    assert "adatailr - ce" in page and "Reading" in page and "data:image/png;base64" in page
    # a second call trains nothing and returns the same numbers
    final = {p: p.stat().st_mtime_ns for p in root.glob("*/captioner/final/**/*") if p.is_file()}
    assert {p.relative_to(root).parts[0] for p in final} == {r.name for r in study.runs}
    again: list[str] = []
    same = loss_study(world, tmp_path, CFG, seeds=(0, 1), hooks=StepHooks(step=again.append))
    assert same.to_dict() == study.to_dict()
    assert not any("training" in s for s in again)
    assert {p: p.stat().st_mtime_ns for p in final} == final
    with pytest.raises(FlywheelError, match="other settings"):
        loss_study(world, tmp_path, FlywheelConfig(videos=6, human_share=0.34, steps=3, vendi=False))


def test_summary_by_hand():
    """The tiny runs above score 0 everywhere; here per-video numbers that differ check the arithmetic."""
    videos = ["v1", "v2", "v3"]
    scores = {
        ("ce", 0): [1.0, 2.0, 3.0],
        ("ce", 1): [2.0, 2.0, 2.0],
        ("adatailr", 0): [2.0, 2.5, 3.0],
        ("adatailr", 1): [1.0, 4.0, 4.0],
    }
    runs = [
        LossRun(
            loss,
            seed,
            RoundResult(
                f"{loss}-{seed}",
                "test",
                quality={"cider_d": mean(v)},
                per_video_cider=dict(zip(videos, v, strict=True)),
            ),
        )  # fmt: skip
        for (loss, seed), v in scores.items()
    ]
    study = summarize(runs, ("ce", "adatailr"), (0, 1), FlywheelConfig(resamples=300))
    assert study.baseline == "ce"
    assert study.losses["ce"] == {
        "seeds": 2, "cider_d": 2.0, "min": 2.0, "max": 2.0, "bleu_4": 0.0, "rouge_l": 0.0,
    }  # fmt: skip
    assert study.losses["adatailr"]["cider_d"] == pytest.approx(2.75)
    assert (study.losses["adatailr"]["min"], study.losses["adatailr"]["max"]) == (2.5, 3.0)
    diffs = {d["seed"]: d for d in study.differences}
    assert diffs[0]["difference"] == pytest.approx(0.5) and diffs[1]["difference"] == pytest.approx(1.0)
    # pooled: per video, the seeds' mean of each loss (ce 1.5, 2, 2.5; adatailr 1.5, 3.25, 3.5), then paired
    assert diffs["pooled"]["difference"] == pytest.approx(0.75) and diffs["pooled"]["videos"] == 3
    assert all(d["low"] <= d["difference"] <= d["high"] for d in diffs.values())
    assert diffs[0]["low"] >= 0.0  # every video is at least as good with adatailr in seed 0
    sentences = reading(study)
    assert any("Seed by seed, adatailr" in x for x in sentences)
    assert all("better" not in x for x in sentences)  # the reading names directions, never more


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    cases = [
        ({"losses": ("ce", "mse")}, "unknown loss 'mse': choose from adatailr, ce"),
        ({"losses": ()}, "no losses to compare"),
        ({"losses": ("ce", "ce")}, "each loss may be given once"),
        ({"seeds": ()}, "no seeds"),
        ({"seeds": (0, 0)}, "each seed may be given once"),
        ({"seeds": (-1,)}, "seeds must be integers >= 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(FlywheelError, match=message):
            loss_study(tmp_path, out, CFG, **kwargs)
    with pytest.raises(FlywheelError, match="world folder not found"):
        loss_study(tmp_path / "nothing", out, CFG)
    assert not out.exists()
    # an OUT that holds a flywheel run prepared from other videos keeps its data
    out.mkdir()
    (out / "flywheel.json").write_text(json.dumps({"world": str(tmp_path.resolve()), "videos": 99}))
    with pytest.raises(FlywheelError, match="holds a flywheel run"):
        loss_study(tmp_path, out, CFG)
    assert not (out / "losses").exists()


def test_mean_interval_and_the_command_line(tmp_path):
    scores = {"a": 1.0, "b": 2.0, "c": 6.0}
    iv = mean_interval(scores, 500, seed=3)
    assert iv["mean"] == pytest.approx(3.0) and 1.0 <= iv["low"] <= 3.0 <= iv["high"] <= 6.0
    assert mean_interval(scores, 500, seed=3) == iv and iv["videos"] == 3
    from sparrow.cli import app

    res = CliRunner().invoke(
        app, ["flywheel-losses", "--world", str(tmp_path), "-o", str(tmp_path / "o"), "--losses", "ce,mse"]
    )
    assert res.exit_code != 0 and "unknown loss 'mse'" in str(res.exception)
    res = CliRunner().invoke(
        app, ["flywheel-losses", "--world", str(tmp_path), "-o", str(tmp_path / "o"), "--seeds", "0,x"]
    )
    assert res.exit_code != 0 and "--seeds takes a comma-separated list" in str(res.exception)
