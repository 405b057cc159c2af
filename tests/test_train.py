"""Training: mixtures and caps, recipes, freezing per stage, exact resume, a run whose loss falls, CLI."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model
from train_data import REPO, make_data, model_config, stage, text_record, write_jsonl

from sparrow.train.data import StepBatchSampler
from sparrow.train.mixture import Mixture, MixtureConfig, MixtureError, parse_cap
from sparrow.train.optim import lr_factor
from sparrow.train.options import RunOptions
from sparrow.train.recipe import Recipe, RecipeError
from sparrow.train.rundir import read_metrics
from sparrow.train.seeds import derive_seed
from sparrow.train.trainer import train

# Bit-for-bit comparisons (resume, frozen weights): one thread, deterministic algorithms.
pytestmark = pytest.mark.usefixtures("deterministic")

# ------------------------------------------------------------------------------------------ mixture


@pytest.fixture(scope="module")
def pools(tmp_path_factory) -> Path:
    import random

    root = tmp_path_factory.mktemp("pools")
    rng = random.Random(1)
    write_jsonl(root / "a.jsonl", [text_record(i, rng) | {"id": f"a{i}"} for i in range(40)])
    write_jsonl(root / "b.jsonl", [text_record(i, rng) | {"id": f"b{i}"} for i in range(10)], ["not json"])
    image = {
        "id": "img0",
        "messages": [{"role": "user", "content": "<image>\nq"}, {"role": "assistant", "content": "a"}],
        "media": [{"type": "image", "path": "x.png"}],
    }
    write_jsonl(root / "c.jsonl", [image | {"id": f"c{i}"} for i in range(5)])
    return root


def test_mixture_draws_match_weights_exactly_per_epoch(pools):
    cfg = MixtureConfig.from_dict(
        {
            "sources": [
                {"path": "a.jsonl", "weight": 2},
                {"path": "b.jsonl", "weight": 1},  # pool of 10, share 25 of 100: up-sampled
                {"path": "c.jsonl", "weight": 1},
            ],
            "seed": 3,
            "epoch_size": 100,
        }
    )
    mix = Mixture(cfg, pools)
    assert mix.quotas == [50, 25, 25]
    for e in range(3):
        d = mix.epoch(e)
        assert Counter(d[:, 0].tolist()) == {0: 50, 1: 25, 2: 25}
        # Without replacement inside each pass over a pool: source a (40 records, 50 draws) repeats 10.
        a = d[d[:, 0] == 0, 1].tolist()
        assert len(set(a)) == 40
        # Every prefix keeps the shares (within 2 draws), so a run shorter than an epoch is mixed too.
        for n in range(1, 101):
            counts = np.bincount(d[:n, 0], minlength=3)
            assert np.all(np.abs(counts - n * np.array([0.5, 0.25, 0.25])) <= 2), (n, counts)
    # Deterministic from the seed; another seed gives another order.
    assert (Mixture(cfg, pools).epoch(1) == mix.epoch(1)).all()
    other = Mixture(MixtureConfig.from_dict({**cfg.to_dict(), "seed": 4}), pools)
    assert not (other.epoch(0) == mix.epoch(0)).all()
    report = mix.report(300)
    shares = {s["name"]: s["drawn_share"] for s in report["sources"]}
    assert shares == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert report["media_kinds"]["text"]["drawn"] == 225 and report["media_kinds"]["image"]["drawn"] == 75
    b = next(s for s in report["sources"] if s["name"] == "b")
    assert b["bad_lines"] == 1 and b["pool"] == 10 and b["repeats"] == b["drawn"] - 10
    # Natural weights: one epoch is every pool record once.
    natural = Mixture(MixtureConfig.from_dict({"sources": ["a.jsonl", "b.jsonl"]}), pools)
    assert natural.epoch_size == 50 and sorted(natural.epoch(0)[:, 0].tolist()) == [0] * 40 + [1] * 10


def test_caps(pools):
    assert parse_cap("first:5", 40) == ("first", 5)
    assert parse_cap("10%", 40) == ("random", 4)
    assert parse_cap("end:25%", 41) == ("end", 11)  # rounded up like LLaVA-OneVision
    assert parse_cap("random:100", 40) == ("random", 40)
    assert parse_cap(7, 40) == ("random", 7)
    for bad in ("first:", "top:3", "150%", "1.5"):
        with pytest.raises(MixtureError):
            parse_cap(bad, 40)

    def ids(cap: str, seed: int = 0) -> list[str]:
        mix = Mixture(
            MixtureConfig.from_dict({"sources": [{"path": "a.jsonl", "cap": cap}], "seed": seed}), pools
        )
        src = mix.sources[0]
        return [src.read(i).id for i in range(len(src))]

    assert ids("first:3") == ["a0", "a1", "a2"]
    assert ids("end:2") == ["a38", "a39"]
    assert len(ids("25%")) == 10
    picked = ids("random:6")
    assert len(set(picked)) == 6 and picked == ids("random:6") and picked != ids("random:6", seed=1)
    # Optional missing sources drop out; required ones fail with the path in the message.
    mix = Mixture(
        MixtureConfig.from_dict({"sources": ["a.jsonl", {"path": "nope.jsonl", "optional": True}]}), pools
    )
    assert mix.missing == ["nope"] and mix.report(10)["missing_sources"] == ["nope"]
    with pytest.raises(MixtureError, match="nope.jsonl"):
        Mixture(MixtureConfig.from_dict({"sources": ["nope.jsonl"]}), pools)


def test_step_sampler_same_positions_for_any_world_size():
    one = list(StepBatchSampler(3, 8, micro=2, accum=4, rank=0, world_size=1, start_step=1))
    two = [
        list(StepBatchSampler(3, 8, micro=2, accum=2, rank=r, world_size=2, start_step=1)) for r in range(2)
    ]
    per_step = [sorted(x for mb in one[s * 4 : (s + 1) * 4] for x in mb) for s in range(2)]
    per_step_2 = [
        sorted(x for r in range(2) for mb in two[r][s * 2 : (s + 1) * 2] for x in mb) for s in range(2)
    ]
    assert per_step == per_step_2 == [list(range(8, 16)), list(range(16, 24))]


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, min_ratio=0.1) == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------ recipes


def test_shipped_recipes_load():
    tiny = Recipe.from_yaml(REPO / "configs" / "tiny" / "apollo-3stage.yaml")
    assert [s.trainable for s in tiny.stages] == [["connector"], ["vision", "connector"], ["connector", "lm"]]
    assert tiny.resolve(tiny.model) == REPO / "configs" / "tiny" / "model.yaml"
    real = Recipe.from_yaml(REPO / "configs" / "templates" / "apollo-3stage-siglip-qwen2.5.yaml")
    assert all(s.batch_size == 256 and s.epochs == 1 and s.grad_clip == 1.0 for s in real.stages)
    assert [s.sampling.get("max_clips") for s in real.stages] == [25, 25, 200]
    assert real.stages[1].lr["vision"] == 5e-6
    shares = [src.weight for src in real.stages[2].mixture.sources]
    assert shares[:3] == [14.4, 33.0, 16.6] and shares[3] + shares[4] == 36.0  # video = 2:1 real:synthetic


def test_recipe_errors_are_clear():
    base = {"model": {"tokenizer": "tiny"}, "stages": [stage("s", ["lm"], 1, ["t.jsonl"])]}
    Recipe.from_dict(base)
    with pytest.raises(RecipeError, match="unknown key"):
        Recipe.from_dict({**base, "stages": [{**base["stages"][0], "lrr": 1}]})
    with pytest.raises(RecipeError, match="no learning rate"):
        Recipe.from_dict({**base, "stages": [{**base["stages"][0], "trainable": ["lm", "vision"]}]})
    with pytest.raises(RecipeError, match="gamma"):
        Recipe.from_dict({**base, "stages": [{**base["stages"][0], "loss": "tailr"}]})
    s = Recipe.from_dict(
        {
            **base,
            "stages": [{**base["stages"][0], "batch_size": 8, "micro_batch_size": None, "grad_accum": 2}],
        }
    ).stages[0]
    assert s.micro_and_accum(1) == (4, 2) and s.micro_and_accum(2) == (2, 2)
    with pytest.raises(RecipeError, match="divisible"):
        s.micro_and_accum(3)


# ------------------------------------------------------------------------------------- training run


def _recipe(data: Path, **top) -> Recipe:
    stages = [
        stage("align", ["connector"], 2, [{"path": "frames.jsonl"}]),
        stage(
            "tune",
            ["connector", "lm"],
            6,
            [
                {"path": "text.jsonl", "weight": 2},
                {"path": "frames.jsonl", "weight": 1},
                {"path": "videos.jsonl", "weight": 1},
            ],
            packing=True,
            checkpoint_every=2,
            loss={"name": "adatailr", "lam": 4.0, "momentum": 0.5},
        ),
    ]
    return Recipe.from_dict(
        {"model": model_config(dropout=0.1), "seed": 5, "stages": stages, "num_workers": 0, **top}
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"), videos=2)


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "full"
    events: list[dict] = []
    # One loader worker here, none in the resumed run: the data stream must not depend on it.
    summary = train(
        _recipe(data, num_workers=1), RunOptions(out=out, data_root=data, progress=events.append, threads=1)
    )
    return out, {"summary": summary, "events": events}


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    from sparrow.model import load_pretrained

    model, _ = load_pretrained(ckpt)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _initial_weights(recipe: Recipe) -> dict[str, torch.Tensor]:
    from sparrow.model import VideoLLMConfig

    # the trainer seeds the same way before building the model
    model, _ = tiny_model(VideoLLMConfig.from_dict(recipe.model), seed=derive_seed(recipe.seed, "init"))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _part(sd: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if k.startswith(part + ".")}


def test_freezing_per_stage_keeps_frozen_weights_bit_identical(full_run, data):
    out, _ = full_run
    init = _initial_weights(_recipe(data))
    s1, s2 = _weights(out / "stage1-align"), _weights(out / "stage2-tune")
    assert set(init) == set(s1) == set(s2)
    for name in ("vision", "lm"):  # frozen in stage 1
        assert all(torch.equal(init[k], s1[k]) for k in _part(init, name)), name
    assert any(not torch.equal(init[k], s1[k]) for k in _part(init, "connector"))
    # Stage 2 starts from stage 1 and freezes the vision tower.
    assert all(torch.equal(s1[k], s2[k]) for k in _part(s1, "vision"))
    for name in ("lm", "connector"):
        assert any(not torch.equal(s1[k], s2[k]) for k in _part(s1, name)), name
    final = _weights(out / "final")
    assert all(torch.equal(final[k], s2[k]) for k in final)


def test_run_outputs_loss_falls_and_bad_data_is_skipped(full_run):
    out, info = full_run
    rows = read_metrics(out / "metrics.jsonl")
    assert [(r["stage"], r["step"]) for r in rows] == [(1, 1), (1, 2)] + [(2, s) for s in range(1, 7)]
    tune = [r["loss"] for r in rows if r["stage"] == 2]
    assert all(math.isfinite(x) for x in tune)
    assert tune[-1] < 0.6 * tune[0], tune  # a clear fall, not noise
    assert all(r["samples"] + r["skipped"] >= 4 for r in rows) and rows[0]["tokens_per_s"] > 0
    ada = [r for r in rows if r["stage"] == 2]
    assert ada[0]["gamma"] == 0.0 and ada[-1]["gamma"] > 0 and 0 < ada[-1]["mean_weight"] <= 1
    # The broken line (index time) and the missing frame (processing time) are reported, not fatal.
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert any(e.get("line") == 14 and e["source"] == "frames" for e in errors)
    assert any(e.get("id") == "frames-missing" and "not found" in e["reason"] for e in errors)
    report = json.loads((out / "mixture_report.json").read_text())
    tune_report = report["stages"][1]
    assert tune_report["drawn"] == 24 and {s["name"] for s in tune_report["sources"]} == {
        "text",
        "frames",
        "videos",
    }
    assert sum(s["drawn"] for s in tune_report["sources"]) == 24
    assert set(tune_report["media_kinds"]) == {"text", "video"}
    for png in ("loss_stage1-align.png", "loss_stage2-tune.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list((out / "checkpoints").iterdir())  # superseded by the stage checkpoints
    kinds = Counter(e["event"] for e in info["events"])
    assert kinds["stage"] == 2 and kinds["step"] == 8 and kinds["checkpoint"] == 2 and kinds["done"] == 1


class _Kill(Exception):
    pass


def test_resume_continues_exactly(full_run, data, tmp_path):
    out_full, _ = full_run
    out = tmp_path / "killed"

    def kill_at_step5(event):
        if event["event"] == "step" and event["stage"] == 2 and event["step"] == 5:
            raise _Kill  # after the checkpoint of step 4

    with pytest.raises(_Kill):
        train(_recipe(data), RunOptions(out=out, data_root=data, progress=kill_at_step5, threads=1))
    assert (out / "checkpoints" / "stage2-step0000004").is_dir()
    with pytest.raises(Exception, match="--resume"):
        train(_recipe(data), RunOptions(out=out, data_root=data))
    shutil.copytree(out, tmp_path / "other-threads")
    shutil.copytree(out, tmp_path / "at-boundary")
    events: list[dict] = []
    train(_recipe(data), RunOptions(out=out, data_root=data, resume=True, progress=events.append, threads=1))
    assert [e["step"] for e in events if e["event"] == "step"] == [5, 6]  # picked up after step 4
    assert not [e for e in events if e["event"] == "note"]
    # Another thread count goes on, but says that the run is no longer exact.
    other: list[dict] = []
    opts = RunOptions(
        out=tmp_path / "other-threads", data_root=data, resume=True, progress=other.append, threads=2
    )
    train(_recipe(data), opts)
    notes = [e["text"] for e in other if e["event"] == "note"]
    assert len(notes) == 1 and "resumed with 2 CPU threads, saved with 1" in notes[0]
    assert [e["step"] for e in other if e["event"] == "step"] == [5, 6]
    # Also when it goes on after a finished stage (no checkpoint of stage 2 left: stage 2 starts over).
    shutil.rmtree(tmp_path / "at-boundary" / "checkpoints")
    boundary: list[dict] = []
    opts = replace(opts, out=tmp_path / "at-boundary", progress=boundary.append)
    train(_recipe(data), opts)
    notes = [e["text"] for e in boundary if e["event"] == "note"]
    assert len(notes) == 1 and "resumed with 2 CPU threads, saved with 1" in notes[0]
    assert [e["step"] for e in boundary if e["event"] == "step"] == [1, 2, 3, 4, 5, 6]
    full = [
        (r["stage"], r["step"], r["loss"], r.get("gamma")) for r in read_metrics(out_full / "metrics.jsonl")
    ]
    resumed = [
        (r["stage"], r["step"], r["loss"], r.get("gamma")) for r in read_metrics(out / "metrics.jsonl")
    ]
    assert resumed == full  # bit-for-bit the same curve
    a, b = _weights(out_full / "final"), _weights(out / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_train_and_errors(data, tmp_path, capsys):
    from sparrow.cli import main

    recipe = _recipe(data).to_dict()
    recipe["stages"] = recipe["stages"][:1]
    del recipe["base_dir"]
    import yaml

    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump(recipe))
    with pytest.raises(SystemExit) as e:
        main(
            [
                "train",
                str(cfg),
                "--out",
                str(tmp_path / "o"),
                "--data-root",
                str(data),
                "--max-steps",
                "1",
                "--threads",
                "1",
            ]
        )
    assert e.value.code == 0
    assert len(read_metrics(tmp_path / "o" / "metrics.jsonl")) == 1
    with pytest.raises(SystemExit) as e:
        main(["train", str(cfg), "--out", str(tmp_path / "o"), "--data-root", str(data)])
    assert e.value.code == 2 and "--resume" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [{name: x, trainable: [lm], lr: 1, mixture: [a.jsonl], stepz: 3}]\nmodel: {}\n")
    with pytest.raises(SystemExit) as e:
        main(["train", str(bad), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "stepz" in err and "Traceback" not in err


def test_gradient_checkpointing_gives_the_same_step(data, tmp_path):
    rows = []
    for gc in (False, True):
        recipe = _recipe(data, gradient_checkpointing=gc)
        recipe.stages = recipe.stages[1:]  # connector + LM trainable: checkpointing is active in the LM
        train(recipe, RunOptions(out=tmp_path / str(gc), data_root=data, max_steps=1, threads=1))
        rows.append(read_metrics(tmp_path / str(gc) / "metrics.jsonl")[0])
    assert rows[1]["loss"] == pytest.approx(rows[0]["loss"], rel=1e-6)
    assert rows[1]["grad_norm"] == pytest.approx(rows[0]["grad_norm"], rel=1e-4)


def test_train_media_root_takes_refine_records_directly(tmp_path, capsys):
    """Records whose media lead outside their folder (refine's OUT/captions.jsonl -> ../videos) are
    refused with a one-line message naming --media-root, and train with it."""
    import yaml
    from media import write_video

    from sparrow.cli import main

    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    rows = []
    for i in range(2):
        write_video(data / "videos" / f"v{i}.mp4", num_frames=20, fps=10, width=32, height=32)
        rows.append(
            {
                "id": f"v{i}_0",
                "messages": [
                    {
                        "role": "user",
                        "content": "<video>\nDescribe what happens in this clip in one sentence.",
                    },
                    {"role": "assistant", "content": f"A red circle number {i}."},
                ],
                "media": [{"type": "video", "path": f"../videos/v{i}.mp4", "start": 0.0, "end": 2.0}],
            }
        )
    records = write_jsonl(data / "refined" / "captions.jsonl", rows)
    recipe = {
        "model": model_config(),
        "seed": 0,
        "num_workers": 0,
        "stages": [
            stage("tune", ["connector"], 1, [{"path": str(records)}], batch_size=2, micro_batch_size=1)
        ],
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    args = ["train", str(tmp_path / "r.yaml"), "--threads", "1"]

    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    [line] = [x for x in err.splitlines() if x.startswith("error")]  # one line says it all
    assert "../videos/v0.mp4" in line and "resolves outside" in line and "--media-root" in line
    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path / "x"), "--media-root", str(tmp_path / "nowhere")])
    assert e.value.code == 2 and "--media-root" in capsys.readouterr().err

    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path / "run"), "--media-root", str(data)])
    assert e.value.code == 0
    [row] = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert math.isfinite(row["loss"]) and row["samples"] == 2 and row["skipped"] == 0
    assert (
        not (tmp_path / "run" / "errors.jsonl").exists()
        or not (tmp_path / "run" / "errors.jsonl").read_text()
    )
