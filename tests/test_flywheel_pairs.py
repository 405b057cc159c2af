"""``sparrow flywheel-pairs``: the captioner's task on a world's training videos, from its ASR lines and
ground truth (pretraining data for ``--captioner-init``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_flywheel import WORLD
from typer.testing import CliRunner

from sparrow.captions import load_captions
from sparrow.cli import app
from sparrow.flywheel.narrated import narrated_question, world_pairs
from sparrow.refine.prompts import NO_CAPTION
from sparrow.ui import UsageError
from sparrow.world.config import preset_config
from sparrow.world.generate import generate_world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "world"
    settings = {**WORLD, "videos": {"train": 3, "val": 0, "test": 1}}  # test videos must be left out
    generate_world(out, config=preset_config("tiny", 5, **settings), workers=1)
    return out


def test_pairs_are_the_train_videos_asr_lines_answered_with_their_ground_truth(world: Path, tmp_path: Path):
    out = tmp_path / "pairs.jsonl"
    n = world_pairs(world, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    asr = load_captions(world / "transcripts" / "caption.json")
    truth = load_captions(world / "transcripts" / "ground_truth.json")
    train_lines = sum(len(t.lines) for k, t in asr.items() if k.startswith("train-"))
    assert n == len(rows) == train_lines > 0  # one record a spoken line, test videos left out
    captions = {line.text for t in truth.values() for line in t.lines}
    for row in rows:
        vid = row["meta"]["video_id"]
        assert vid.startswith("train-")
        spoken = row["messages"][0]["content"].removeprefix("<video>\n")
        assert spoken in {narrated_question(line.text) for line in asr[vid].lines}
        assert row["messages"][1]["content"] in captions | {NO_CAPTION}
        media = row["media"][0]
        assert (out.parent / media["path"]).resolve().is_file()
        assert 0 <= media["start"] < media["end"]
    assert any(r["messages"][1]["content"] != NO_CAPTION for r in rows)


def test_cli_writes_into_the_world_by_default_and_refuses_a_non_world(world: Path, tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(app, ["flywheel-pairs", "--world", str(world)])
    assert res.exit_code == 0, res.output
    assert (world / "train_narrated.jsonl").is_file()
    bad = runner.invoke(app, ["flywheel-pairs", "--world", str(tmp_path)])
    assert isinstance(bad.exception, UsageError) and "a `sparrow world` folder" in str(bad.exception)
