"""The ``sparrow trinity``, ``sparrow refine --dry-run`` and ``sparrow serve`` commands."""

from __future__ import annotations

import json

import pytest

from sparrow.cli import main

TRUTH = {
    "a": {
        "start": [0.0, 4.0],
        "end": [2.0, 6.0],
        "text": ["A red circle enters from the left.", "The word FISH is shown."],
    },
    "b": {"start": [1.0], "end": [3.0], "text": ["The green cross stands still."]},
}
ASR = {
    "a": {
        "start": [0.5, 2.0, 4.0],
        "end": [2.0, 3.0, 6.0],
        "text": ["a blue circle comes in from the left", "um okay so", "it says fish"],
    },
    "b": {"start": [3.0], "end": [4.0], "text": ["the green cross just sits there"]},
}


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code


def test_trinity_command_writes_the_report_and_compares(tmp_path, capsys):
    (tmp_path / "truth.json").write_text(json.dumps(TRUTH))
    (tmp_path / "asr.json").write_text(json.dumps(ASR))
    out = tmp_path / "report.json"
    code = cli(
        "trinity", str(tmp_path / "truth.json"), "--reference", str(tmp_path / "truth.json"),
        "--compare", str(tmp_path / "asr.json"), "--no-vendi", "--resamples", "200", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    rep = json.loads(out.read_text())
    assert rep["quantity"]["captions"] == 3 and rep["diversity"]["vendi"] is None
    assert rep["quality"]["bleu_4"] == pytest.approx(1.0) and rep["quality"]["time_offset"] == 0.0
    assert rep["slots"] == {"colour": 1.0, "shape": 1.0, "word": 1.0, "action": 1.0, "events": 3}
    diff = rep["compare"]["cider_d_difference"]
    assert diff["difference"] > 0 and diff["low"] <= diff["difference"] <= diff["high"]
    assert "CIDEr-D difference" in capsys.readouterr().out
    assert cli("trinity", str(tmp_path / "asr.json"), "--compare", str(tmp_path / "truth.json")) == 2
    assert cli("trinity", str(tmp_path / "missing.json"), "--no-vendi") == 2
    assert "cannot read" in capsys.readouterr().err


def test_refine_dry_run_prints_prompts_and_estimate(tmp_path, capsys):
    (tmp_path / "asr.json").write_text(json.dumps(ASR))
    (tmp_path / "videos").mkdir()
    code = cli(
        "refine", str(tmp_path / "asr.json"), "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "o"),
        "--dry-run", "--limit", "1",
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "0s: a blue circle comes in from the left" in printed and "4s: it says fish" in printed
    assert "prompt tokens (est.)" in printed and not (tmp_path / "o").exists()
    assert (
        cli(
            "refine",
            str(tmp_path / "asr.json"),
            "--videos",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--backend",
            "nope",
        )
        == 2
    )


def test_serve_command_refuses_a_bad_checkpoint(tmp_path, capsys):
    assert cli("serve", str(tmp_path / "nockpt")) == 2
    assert "cannot load checkpoint" in capsys.readouterr().err
