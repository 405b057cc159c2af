"""The experiment runner: a grid of recipe variants × seeds on a tiny world, trained and evaluated end to
end; the table against the predictions; resume that skips finished runs; a grown grid that runs only
its new runs; a changed or bad grid refused with one line; the paired comparisons on known numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from sparrow.experiment import ExperimentError, ExperimentOptions, load_grid, run_experiment
from sparrow.experiment.compare import build_table
from sparrow.experiment.overrides import apply_dotted
from sparrow.jobs.hooks import StepHooks

RECIPE = REPO / "configs" / "tiny" / "apollo-3stage.yaml"
SMALL = {"num_workers": 0, "checkpoint_every": None}  # every stage: 2 samples a step, no loader process
for _stage in ("align", "vision", "finetune"):
    SMALL |= {f"stages.{_stage}.batch_size": 2, f"stages.{_stage}.micro_batch_size": 2}


def _conditions() -> list[str]:
    from sparrow.eval.conditions import CONDITIONS

    return ["video", "text"] + (["swap"] if "swap" in CONDITIONS else [])


def write_grid(path: Path, world: Path, variants: dict, seeds: list[int] = [0], **extra) -> Path:  # noqa: B006
    grid = {
        "name": "tiny",
        "recipe": str(RECIPE),
        "data_root": str(world),
        "eval": {"conditions": _conditions(), "method": "cloze_norm", "bootstrap": 200, "batch_size": 16},
        "seeds": seeds,
        "max_steps": 1,
        "overrides": SMALL,
        "baseline": "base",
        "variants": variants,
        **extra,
    }
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


VARIANTS = {"base": {}, "lm-frozen": {"stages.finetune.trainable": ["connector"]}}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from sparrow.world.generate import generate_world

    out = tmp_path_factory.mktemp("world")
    generate_world(
        out,
        seed=0,
        videos={"train": 4, "val": 1, "test": 3},
        long_videos={"train": 0, "val": 0, "test": 0},
        corpus_docs={"train": 1, "val": 1, "test": 1},
        corpus_words=(100, 150),
    )
    return out


@pytest.fixture(scope="module")
def done(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    grid = write_grid(root / "grid.yaml", world, VARIANTS)
    steps: list[str] = []
    summary = run_experiment(
        load_grid(grid), root / "out", ExperimentOptions(threads=1, hooks=StepHooks(steps.append))
    )
    return root, summary, steps


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_grid_trains_evaluates_and_writes_the_table(done):
    root, summary, steps = done
    out = root / "out"
    conditions = _conditions()
    assert steps == [
        "train base seed 0",
        "eval base seed 0",
        "train lm-frozen seed 0",
        "eval lm-frozen seed 0",
    ]
    rows = _rows(out / "results.jsonl")
    assert [(r["variant"], r["seed"], r["condition"]) for r in rows] == [
        (v, 0, c) for v in VARIANTS for c in conditions
    ]
    for r in rows:  # each row is its run's predictions file, summed up
        preds = _rows(out / r["dir"] / "eval" / r["condition"] / "predictions.jsonl")
        assert r["n"] == len(preds) > 0
        assert r["accuracy"] == pytest.approx(sum(p["correct"] for p in preds) / len(preds))
        assert set(r["by_category"]) == {p["category"] for p in preds}
        assert (out / r["dir"] / "train" / "final" / "config.json").is_file()
    # The variant really changed the recipe: the finetune stage left the LM alone in lm-frozen only.
    base_run = json.loads((out / "runs/base/seed0/train/run.json").read_text())
    frozen_run = json.loads((out / "runs/lm-frozen/seed0/train/run.json").read_text())
    assert base_run["recipe"]["stages"][2]["trainable"] == ["connector", "lm"]
    assert frozen_run["recipe"]["stages"][2]["trainable"] == ["connector"]
    assert summary.counts.ok == 2 and summary.counts.resumed == 0
    table = (out / "table.md").read_text()
    lines = [x for x in table.splitlines() if x.startswith("| ")]
    assert lines[0].startswith("| variant | seeds | " + " | ".join(conditions) + " | video - text")
    assert lines[1].startswith("| base | 0 | ") and lines[1].endswith("| baseline |")
    video = {r["variant"]: r["accuracy"] for r in rows if r["condition"] == "video"}
    assert lines[2].startswith(f"| lm-frozen | 0 | {video['lm-frozen']:.3f} | ")
    versus = summary.table[1]["vs_baseline"]["video"]
    assert versus["diff"] == pytest.approx(video["lm-frozen"] - video["base"])
    assert versus["ci95"][0] <= versus["diff"] <= versus["ci95"][1]
    assert lines[2].endswith(
        f"| {versus['diff']:+.3f} [{versus['ci95'][0]:+.3f}, {versus['ci95'][1]:+.3f}] |"
    )
    html = (out / "report.html").read_text()
    assert "<td>lm-frozen</td>" in html and "data:image/png;base64," in html


def test_rerun_skips_finished_runs_and_a_grown_grid_runs_only_the_new_ones(done, world, capsys):
    from sparrow.cli import main

    root, _, _ = done
    out = root / "out"
    watched = [
        out / "runs/base/seed0/train/final/config.json",
        out / "runs/base/seed0/eval/video/predictions.jsonl",
    ]
    before = [p.stat().st_mtime_ns for p in watched]
    table = (out / "table.md").read_text()
    steps: list[str] = []
    summary = run_experiment(
        load_grid(root / "grid.yaml"), out, ExperimentOptions(threads=1, hooks=StepHooks(steps.append))
    )
    assert steps == [] and summary.counts.resumed == 2
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert (out / "table.md").read_text() == table  # recomputed from the same predictions
    # The command does the same and prints the table.
    with pytest.raises(SystemExit) as e:
        main(["experiment", str(root / "grid.yaml"), "--out", str(out), "--threads", "1"])
    assert e.value.code == 0 and [p.stat().st_mtime_ns for p in watched] == before
    assert json.loads((out / "summary.json").read_text())["counts"] == {
        "items": 2,
        "ok": 2,
        "failed": 0,
        "resumed": 2,
    }
    printed = capsys.readouterr().out
    assert "lm-frozen" in printed and "2 of 2 finished (2 from an earlier run)" in printed
    grown = write_grid(
        root / "grown.yaml", world, {**VARIANTS, "no-align": {"stages.align.lr.connector": 0.0}}
    )
    summary = run_experiment(
        load_grid(grown), out, ExperimentOptions(threads=1, hooks=StepHooks(steps.append))
    )
    assert steps == ["train no-align seed 0", "eval no-align seed 0"]
    assert summary.counts.resumed == 2 and summary.counts.ok == 3
    assert [r["variant"] for r in summary.table] == ["base", "lm-frozen", "no-align"]


def test_a_changed_variant_is_refused_in_one_line(done, world, capsys):
    from sparrow.cli import main

    root, _, _ = done
    changed = write_grid(
        root / "changed.yaml", world, {**VARIANTS, "lm-frozen": {"stages.finetune.lr.connector": 1e-5}}
    )
    with pytest.raises(ExperimentError, match=r"'lm-frozen' seed 0: .* other settings \(changed: recipe\)"):
        run_experiment(load_grid(changed), root / "out", ExperimentOptions(threads=1))
    with pytest.raises(SystemExit) as e:
        main(["experiment", str(changed), "--out", str(root / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "other settings" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            {"base": {}, "x": {"stages.finetune.stepz": 3}},
            r"variant 'x': stage 'finetune': unknown key\(s\) \['stepz'\]",
        ),
        ({"base": {}, "x": {"stages.polish.steps": 3}}, r"variant 'x': stages: no item 'polish'"),
        ({"base": {}, "x": {"model.connector.kind": "mlp"}}, r"variant 'x': .*kind"),
        ({"other": {}}, r"baseline 'base' is not a variant"),
    ],
)
def test_bad_grid_gives_one_line(world, tmp_path, capsys, variants, message):
    from sparrow.cli import main

    grid = write_grid(tmp_path / "bad.yaml", world, variants)
    with pytest.raises(ExperimentError, match=message):
        load_grid(grid)
    with pytest.raises(SystemExit) as e:
        main(["experiment", str(grid), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_dotted_overrides_reach_stages_by_name_or_position_and_the_model_file():
    base = yaml.safe_load(RECIPE.read_text())
    out = apply_dotted(
        base,
        {"stages.align.steps": 500, "stages.-1.loss.name": "adatailr", "model.connector.type": "mlp_pool"},
        RECIPE.parent,
        "variant 'v'",
    )
    assert out["stages"][0]["steps"] == 500 and out["stages"][2]["loss"]["name"] == "adatailr"
    assert out["model"]["connector"]["type"] == "mlp_pool"  # the model file, inlined and changed
    assert out["model"]["lm"]["config"]["hidden_size"] == 128  # ... with the rest of it kept
    assert base["model"] == "model.yaml" and base["stages"][0]["steps"] == 20  # the base is untouched


def _predictions(path: Path, correct: list[int]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"q{i}", "correct": c}) + "\n" for i, c in enumerate(correct)))
    return str(path.relative_to(path.parents[3]))


def test_paired_comparison_averages_seeds_per_question(tmp_path):
    """Known numbers: the variant minus the baseline is the mean of per-question differences over the
    seeds they share; video − text the same within a variant."""
    answers = {  # (variant, seed, condition) -> correctness of q0..q3
        ("a", 0, "video"): [1, 1, 0, 0],
        ("a", 1, "video"): [1, 0, 0, 0],
        ("a", 0, "text"): [0, 0, 0, 0],
        ("a", 1, "text"): [1, 0, 0, 0],
        ("b", 0, "video"): [1, 1, 1, 0],
        ("b", 1, "video"): [1, 1, 1, 1],
        ("b", 0, "text"): [0, 0, 0, 0],
        ("b", 1, "text"): [0, 0, 0, 0],
    }
    results = {}
    for (v, s, c), correct in answers.items():
        rel = _predictions(tmp_path / v / str(s) / c / "predictions.jsonl", correct)
        run = results.setdefault((v, s), {"variant": v, "seed": s, "conditions": {}})
        run["conditions"][c] = {"n": 4, "accuracy": sum(correct) / 4, "predictions": rel}
    table = build_table(list(results.values()), tmp_path, ["a", "b"], "a", ["video", "text"], resamples=500)
    a, b = table
    assert a["accuracy"] == {"video": 0.375, "text": 0.125} and a["accuracy_range"]["video"] == [0.25, 0.5]
    assert a["gaps"]["video-text"]["diff"] == pytest.approx(0.25)
    assert b["vs_baseline"]["video"]["diff"] == pytest.approx(0.875 - 0.375)
    assert b["vs_baseline"]["video"]["questions"] == 4
    lo, hi = b["vs_baseline"]["video"]["ci95"]
    assert 0 <= lo <= 0.5 <= hi <= 1.0  # per-question differences are 0, .5, 1, .5: never negative
    assert a["vs_baseline"] == {}


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs" / "experiments").glob("*.yaml")))
def test_shipped_grids_load(name, world, tmp_path):
    """Every example grid expands into valid recipes (pointed at the test world instead of ./world)."""
    src = REPO / "configs" / "experiments" / name
    grid = yaml.safe_load(src.read_text())
    grid["recipe"] = str((src.parent / grid["recipe"]).resolve())
    grid["data_root"] = str(world)
    (tmp_path / name).write_text(yaml.safe_dump(grid))
    loaded = load_grid(tmp_path / name)
    assert loaded.baseline in loaded.variant_names()
    assert len(loaded.runs()) == len(grid["variants"]) * len(grid["seeds"])
