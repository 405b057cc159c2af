"""``sparrow flywheel --captioner-init``: every round's captioner starts from a trained checkpoint (its
weights, not the recipe's fresh model), bad paths are one-line errors, and a checkpoint trained on the
world the flywheel scores is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import REPO, tiny_model
from train_data import make_data
from typer.testing import CliRunner

from sparrow.flywheel.captioner import captioner_recipe, train_captioner
from sparrow.flywheel.config import FlywheelConfig, FlywheelError
from sparrow.flywheel.pretrained import check_captioner_init
from sparrow.flywheel.run import flywheel
from sparrow.jobs.hooks import StepHooks
from sparrow.train.initial_model import initial_model

pytestmark = pytest.mark.usefixtures("one_thread")

FLYWHEEL = REPO / "configs" / "flywheel"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny model's checkpoint, its weights drawn from another seed than any recipe's."""
    d = tmp_path_factory.mktemp("init") / "ckpt"
    model, proc = tiny_model(seed=123)
    model.save_pretrained(d, processor=proc)
    return d


def fake_world(root: Path, seed: int) -> Path:
    """The files of a `sparrow world` the leakage check reads: world.json, the ground truth, train files."""
    root.mkdir(parents=True)
    (root / "world.json").write_text(json.dumps({"generator": "sparrow.world", "seed": seed}))
    truth = {
        f"train-{i:04d}": {"start": [0.0], "end": [1.0 + seed], "text": [f"Seed {seed} video {i}."]}
        for i in range(3)
    }
    (root / "transcripts").mkdir()
    (root / "transcripts" / "ground_truth.json").write_text(json.dumps(truth))
    (root / "train_captions.jsonl").write_text("{}\n")
    (root / "synth").mkdir()
    (root / "synth" / "samples.jsonl").write_text("{}\n")  # a source in a subfolder (the seeing recipe's)
    return root


def trained_run(root: Path, ckpt: Path, sources: list[str], init_from: Path | None = None) -> Path:
    """A run directory as `sparrow train` leaves it: final/ (a copy of ``ckpt``), the mixture report and
    run.json (with the recipe's ``init_from`` when the run started from a checkpoint)."""
    shutil.copytree(ckpt, root / "final")
    report = {
        "stages": [{"stage": 1, "sources": [{"name": f"s{i}", "path": p} for i, p in enumerate(sources)]}]
    }
    (root / "mixture_report.json").write_text(json.dumps(report))
    meta = {} if init_from is None else {"recipe": {"init_from": str(init_from), "model": None}}
    (root / "run.json").write_text(json.dumps(meta))
    return root / "final"


def test_recipe_starts_from_the_checkpoint(ckpt, tmp_path):
    cfg = FlywheelConfig(captioner_init=str(ckpt))
    assert cfg.recipe_path() == FLYWHEEL / "captioner-seeing.yaml"  # the default with an init
    recipe = captioner_recipe(cfg, tmp_path / "c.jsonl", tmp_path / "h.jsonl")
    assert recipe.init_from == str(ckpt.resolve()) and recipe.model is None
    assert [s.trainable for s in recipe.stages] == [["connector", "lm"], ["connector", "lm"]]  # tower frozen
    assert (
        recipe.stages[0].sampling["image_size"] == 112 and recipe.stages[0].sampling["timestamps"] == "frame"
    )
    start = initial_model(recipe)[0].state_dict()
    saved = tiny_model(seed=123)[0].state_dict()  # the checkpoint's weights
    fresh = tiny_model(seed=0)[0].state_dict()  # what a recipe's seeded fresh model would draw
    assert set(start) == set(saved) and all(torch.equal(start[n], t) for n, t in saved.items())
    assert not all(torch.equal(fresh[n], t) for n, t in saved.items())
    # without an init the seeing recipe builds the seeing model's architecture, as captioner.yaml the tiny
    plain = captioner_recipe(
        FlywheelConfig(recipe=str(FLYWHEEL / "captioner-seeing.yaml")), tmp_path, tmp_path
    )
    assert plain.init_from is None and plain.model_config().vision.packaged == "efficientnet-lite0"
    assert FlywheelConfig().recipe_path() == FLYWHEEL / "captioner.yaml"


def test_a_round_trains_from_the_checkpoint(ckpt, tmp_path):
    data = make_data(tmp_path / "data", n_text=4, n_frames=6)
    cfg = FlywheelConfig(recipe=str(FLYWHEEL / "captioner.yaml"), captioner_init=str(ckpt), seed=3)
    recipe = captioner_recipe(cfg, data / "frames.jsonl", data / "frames.jsonl")
    final = train_captioner(recipe, tmp_path / "captioner", data, max_steps=1)
    run = json.loads((tmp_path / "captioner" / "run.json").read_text())
    assert run["recipe"]["init_from"] == str(ckpt.resolve()) and run["recipe"]["model"] is None
    assert (final / "config.json").is_file()


def test_bad_checkpoint_paths_are_one_line_errors(ckpt, tmp_path):
    (tmp_path / "empty").mkdir()
    for path, match in ((tmp_path / "nothing", "not found"), (tmp_path / "empty", "no config.json")):
        cfg = FlywheelConfig(captioner_init=str(path), vendi=False)
        with pytest.raises(FlywheelError, match=match) as e:
            captioner_recipe(cfg, tmp_path / "c.jsonl", tmp_path / "h.jsonl")
        assert "\n" not in str(e.value)
        (tmp_path / "w").mkdir(exist_ok=True)
        with pytest.raises(FlywheelError, match=match):
            flywheel(tmp_path / "w", tmp_path / "out", cfg)
        assert not (tmp_path / "out").exists()  # refused before anything is written
    with pytest.raises(FlywheelError, match="empty path"):
        FlywheelConfig(captioner_init=" ").validate()
    from sparrow.cli import app

    def cli(init: Path):
        args = ["flywheel", "--world", str(tmp_path / "w"), "--out", str(tmp_path / "o")]
        return CliRunner().invoke(app, [*args, "--captioner-init", str(init), "--no-vendi"])

    res = cli(tmp_path / "nothing")
    assert res.exit_code != 0 and "checkpoint directory not found" in str(res.exception)
    res = cli(ckpt)  # no record of its training data: a note, then the run goes on (to the empty world)
    assert res.output.count("note:") == 1 and "records no training data" in " ".join(res.output.split())
    assert "ASR transcripts not found" in str(res.exception)
    notes: list[str] = []  # the library hands the note to its hooks, once
    with pytest.raises(FlywheelError, match="ASR transcripts not found"):
        flywheel(tmp_path / "w", tmp_path / "o2", FlywheelConfig(captioner_init=str(ckpt), vendi=False),
                 hooks=StepHooks(note=notes.append))  # fmt: skip
    assert len(notes) == 1 and "records no training data" in notes[0]


def test_a_checkpoint_trained_on_the_world_is_refused(ckpt, tmp_path, monkeypatch):
    w0, w1 = fake_world(tmp_path / "w0", 0), fake_world(tmp_path / "w1", 1)
    shutil.copytree(w0, tmp_path / "w0-copy")
    final = trained_run(tmp_path / "runs" / "seeing", ckpt, [str(w0 / "train_captions.jsonl")])
    for world in (w0, tmp_path / "w0-copy"):  # the same folder, or another folder with the same videos
        with pytest.raises(FlywheelError, match="shares videos with the world") as e:
            check_captioner_init(final, world)
        assert "\n" not in str(e.value) and "sparrow world --seed 1" in str(e.value)
    with pytest.raises(FlywheelError, match="shares videos"):
        flywheel(w0, tmp_path / "out", FlywheelConfig(captioner_init=str(final)))
    assert not (tmp_path / "out").exists()
    assert check_captioner_init(final, w1) == []  # another world: no warning
    # a relative path, as `sparrow train --data-root w0` run in tmp_path records it, found from elsewhere
    rel = trained_run(tmp_path / "runs" / "rel", ckpt, ["w0/train_captions.jsonl", "w0/synth/samples.jsonl"])
    monkeypatch.chdir(tmp_path / "w1")
    with pytest.raises(FlywheelError, match="shares videos"):
        check_captioner_init(rel, w0)
    assert check_captioner_init(rel, w1) == []
    # what cannot be told is a warning: no record beside the checkpoint, or a record that leads nowhere
    (notes,) = check_captioner_init(ckpt, w1)
    assert "records no training data" in notes
    gone = trained_run(tmp_path / "runs" / "gone", ckpt, [str(tmp_path / "deleted" / "train_captions.jsonl")])
    (notes,) = check_captioner_init(gone, w1)
    assert "is not found from this folder" in notes


def test_the_check_follows_the_checkpoints_a_run_started_from(ckpt, tmp_path):
    w0, w1, w2 = (fake_world(tmp_path / f"w{i}", i) for i in range(3))
    seeing = trained_run(tmp_path / "runs" / "seeing", ckpt, [str(w0 / "train_captions.jsonl")])
    # `sparrow train captioner-pretrain.yaml --init-from runs/seeing/final` on w1's files: w0 is inherited
    captioner = trained_run(tmp_path / "runs" / "cap", ckpt, [str(w1 / "train_captions.jsonl")], seeing)
    for world in (w0, w1):
        with pytest.raises(FlywheelError, match="shares videos"):
            check_captioner_init(captioner, world)
    assert check_captioner_init(captioner, w2) == []
    # a parent whose run records nothing is a warning that names it
    bare = trained_run(tmp_path / "runs" / "bare", ckpt, [str(w1 / "train_captions.jsonl")], ckpt)
    (note,) = check_captioner_init(bare, w2)
    assert "records no training data" in note and f"which {bare} was trained from" in note
