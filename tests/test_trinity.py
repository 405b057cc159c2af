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


def test_trinity_tokenizes_unspaced_scripts_by_character(tmp_path):
    from sparrow.caption_metrics import TrinityConfig, trinity
    from sparrow.caption_metrics.text import words
    from sparrow.captions import load_captions

    assert words("一只红色的圆从左边进来。") == list("一只红色的圆从左边进来")
    assert words("猫がいる, a café") == ["猫", "が", "い", "る", "a", "café"]
    zh = {  # two videos: CIDEr-D's idf is 0 for n-grams every video shares
        "a": {"start": [0.0, 3.0], "end": [2.0, 5.0], "text": ["一只红色的圆从左边进来。", "出现了单词鱼。"]},
        "b": {"start": [1.0], "end": [3.0], "text": ["绿色的十字静止不动。"]},
    }
    (tmp_path / "zh.json").write_text(json.dumps(zh, ensure_ascii=False))
    caps = load_captions(tmp_path / "zh.json")
    rep = trinity(caps, caps, TrinityConfig(vendi=False))
    assert rep.quantity["words"] == 26 and rep.diversity["vocabulary"] > 10
    assert rep.quality["bleu_4"] == pytest.approx(1.0) and rep.quality["rouge_l"] == pytest.approx(1.0)
    assert rep.quality["cider_d"] > 0 and rep.quality["matched_share"] == 1.0


def test_trinity_lists_malformed_entries_and_fails(tmp_path, capsys):
    bad = {**TRUTH, "broken": {"start": [0], "end": [1]}, "wrong": [1, 2]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert cli("trinity", str(tmp_path / "bad.json"), "--no-vendi") == 2
    captured = capsys.readouterr()
    assert (
        "broken: 'text' must be a list" in captured.err and "wrong: entry must be an object" in captured.err
    )
    assert "2 malformed entries" in captured.err
    assert "skipped" in captured.out and "None" not in captured.out  # the report still printed, Vendi skipped


def test_slots_are_reported_only_against_the_worlds_ground_truth(tmp_path):
    from sparrow.caption_metrics import TrinityConfig, trinity
    from sparrow.captions import load_captions

    other = {
        "x": {"start": [0.0, 5.0], "end": [4.0, 9.0], "text": ["A red circle on a cake.", "Then we mix."]}
    }
    (tmp_path / "other.json").write_text(json.dumps(other))
    (tmp_path / "truth.json").write_text(json.dumps(TRUTH))
    ref = load_captions(tmp_path / "other.json")
    assert trinity(ref, ref, TrinityConfig(vendi=False)).slots is None
    world = load_captions(tmp_path / "truth.json")
    assert trinity(world, world, TrinityConfig(vendi=False)).slots["events"] == 3
