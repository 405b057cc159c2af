"""The procedural world as written: its files and benchmark rows, determinism across worker counts,
resume, a failed video, no leakage between splits, transcripts, corpus, bad settings and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from world_data import SEED, all_questions, read_jsonl, small_config

from sparrow.mcq import format_mcq_answer, format_mcq_prompt, letter_index
from sparrow.records import load_samples
from sparrow.video import probe
from sparrow.world import SPLITS, WorldError, generate_world, plan_world, preset_config
from sparrow.world.transcripts import ground_truth, noisy_transcript, scene_events

# The shared fixtures, found by pytest where they are imported.
from world_data import scenes_fixture, world_fixture  # noqa: F401  # isort: skip


BENCH_KEYS = {
    "id",
    "video",
    "question",
    "options",
    "answer",
    "category",
    "duration",
    "evidence",
    "centre_frame_suffices",
    "text_answerable",
    "split",
}


# ------------------------------------------------------------------------------------------- layout


def test_layout_records_and_benchmark_rows(world):
    for name in [
        "world.json",
        "train_video_qa.jsonl",
        "val_video_qa.jsonl",
        "test_video_qa.jsonl",
        "train_captions.jsonl",
        "train_text.jsonl",
        "bench_val.jsonl",
        "bench_test.jsonl",
        "corpus_train.jsonl",
        "corpus_val.jsonl",
        "corpus_test.jsonl",
        "transcripts/ground_truth.json",
        "transcripts/caption.json",
    ]:
        assert (world / name).is_file(), name
    info = json.loads((world / "world.json").read_text())
    assert info["seed"] == SEED and info["categories"][0] == "perception"
    for split in SPLITS:
        samples, bad = load_samples(world / f"{split}_video_qa.jsonl")
        assert not bad and samples
        assert info["counts"][split]["questions"] == len(samples)
        for s in samples:
            assert s.media[0].type == "video" and (world / s.media[0].path).is_file()
            assert s.id.startswith(s.meta["video_id"] + "-q") and s.meta["video_id"].startswith(split + "-")
    for split in ("val", "test"):
        rows = read_jsonl(world / f"bench_{split}.jsonl")
        qa = {s.id: s for s in load_samples(world / f"{split}_video_qa.jsonl")[0]}
        assert len(rows) == len(qa)
        for r in rows:
            assert set(r) >= BENCH_KEYS and r["split"] == split
            assert (
                re.fullmatch(rf"{split}-\d{{4}}-q\d+", r["id"])
                and r["video"] == f"videos/{r['video_id']}.mp4"
            )
            s = qa[r["id"]]
            assert s.messages[0]["content"] == "<video>\n" + format_mcq_prompt(r["question"], r["options"])
            assert s.messages[1]["content"] == format_mcq_answer(r["options"], letter_index(r["answer"]))
            assert abs(probe(world / r["video"]).duration - r["duration"]) < 0.05
            for a, b in r["evidence"]:
                assert 0 <= a < b <= r["duration"] + 1e-6
    caps, bad = load_samples(world / "train_captions.jsonl")
    assert not bad and len(caps) == 5
    assert re.match(r"\d\d:\d\d-\d\d:\d\d: ", caps[0].messages[1]["content"])
    texts, bad = load_samples(world / "train_text.jsonl")
    assert not bad and texts and all(t.media_kind == "text" for t in texts)
    assert set(info["categories"]) == {r["category"] for r in all_questions(world)}  # all 7 present


# ------------------------------------------------------------------------------- determinism / resume


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".state" not in p.parts and p.name != "summary.json"  # the run's own record
    }


def test_deterministic_for_any_worker_count(world, tmp_path):
    generate_world(tmp_path / "b", config=small_config(), workers=2)
    a, b = _tree(world), _tree(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


def test_resume_after_interruption(world, tmp_path):
    out = tmp_path / "c"
    seen = []

    def stop_after_three(result):
        seen.append(result)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_world(out, config=small_config(), workers=1, on_progress=stop_after_three)
    assert not (out / "world.json").exists() and len(list((out / "videos").glob("*.mp4"))) == 3
    (out / "videos" / "train-0001.mp4").unlink()  # a lost file is re-rendered, not trusted
    summary = generate_world(out, config=small_config(), workers=1)
    assert summary.resumed == 2 and summary.rendered == 8  # 10 videos: 3 done, 1 of them lost
    a, c = _tree(world), _tree(out)
    assert sorted(a) == sorted(c) and [k for k in a if a[k] != c[k]] == []


def test_a_failed_video_goes_to_errors_and_the_rest_is_written(tmp_path):
    out = tmp_path / "d"
    (out / "videos" / "val-0001.mp4").mkdir(parents=True)  # the encoder cannot rename onto a directory
    summary = generate_world(out, config=small_config(), workers=1)
    assert summary.failed == 1 and summary.videos == 9
    (err,) = read_jsonl(out / "errors.jsonl")
    assert err["id"] == "val-0001" and err["source"] == "world" and err["reason"]
    assert not any(r["video_id"] == "val-0001" for r in read_jsonl(out / "bench_val.jsonl"))
    assert read_jsonl(out / "bench_test.jsonl")
    (out / "videos" / "val-0001.mp4").rmdir()  # fixed: a re-run retries the failed video
    summary = generate_world(out, config=small_config(), workers=1)
    assert summary.failed == 0 and summary.rendered == 1 and not (out / "errors.jsonl").exists()


def test_no_scene_leakage_across_splits(world):
    gt = json.loads((world / "transcripts" / "ground_truth.json").read_text())
    by_split: dict[str, set] = {}
    for vid, entry in gt.items():
        by_split.setdefault(vid.split("-")[0], set()).add(json.dumps(entry["text"]))
    assert set(by_split) == set(SPLITS)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not by_split[a] & by_split[b]
    train_ids = {v for v in gt if v.startswith("train-")}
    for name in ("train_captions.jsonl", "train_text.jsonl"):
        ids = {r["id"].rsplit("-", 1)[0] for r in read_jsonl(world / name)}
        assert ids <= train_ids
    contexts = {
        split: {r["context"] for r in read_jsonl(world / f"corpus_{split}.jsonl")} for split in SPLITS
    }
    assert not contexts["train"] & (contexts["val"] | contexts["test"])


# --------------------------------------------------------------------------------- transcripts / corpus


def test_transcripts_ground_truth_and_controlled_noise(world, scenes):
    gt = json.loads((world / "transcripts" / "ground_truth.json").read_text())
    asr = json.loads((world / "transcripts" / "caption.json").read_text())
    assert set(gt) == set(asr) == set(scenes)
    for vid, entry in asr.items():
        assert len(entry["start"]) == len(entry["end"]) == len(entry["text"])
        assert entry["start"] == sorted(entry["start"])
        assert gt[vid] == ground_truth(scenes[vid])
    many = plan_world(preset_config("tiny", SEED))  # ~1000 event lines: the rate is measured, not guessed
    lines = sum(len(scene_events(s)) for s in many)
    for rate in (0.0, 0.3, 1.0):
        corrupted = chatter = 0
        for s in many:
            cap, log = noisy_transcript(s, rate, SEED)
            corrupted += sum(e["kind"] != "chatter" for e in log)
            chatter += sum(e["kind"] == "chatter" for e in log)
            if rate == 0.0:
                assert cap["text"] == [e.spoken for e in scene_events(s)]
        if rate == 1.0:
            assert corrupted == chatter == lines
        elif rate == 0.3:
            assert 0.25 * lines < corrupted < 0.35 * lines and 0.25 * lines < chatter < 0.35 * lines
        else:
            assert corrupted == chatter == 0


def test_corpus_rows_answerable_from_context(world):
    rows = [r for split in SPLITS for r in read_jsonl(world / f"corpus_{split}.jsonl")]
    assert len(rows) == 8  # 4 docs x 2 questions
    for r in rows:
        assert {"id", "context", "question", "answer"} <= set(r)
        assert r["options"][r["answer_index"]] == r["answer"] and len(set(r["options"])) == 4
        assert r["mcq_question"] == format_mcq_prompt(r["question"], r["options"])
        assert r["mcq_answer"] == format_mcq_answer(r["options"], r["answer_index"])
        assert len(r["context"].split()) >= 150
        if r["category"] == "counting":
            w = re.search(r"the word (\w+) shown", r["question"]).group(1)
            n = len(re.findall(rf"the word {w} appeared|Word shown: {w} \(", r["context"]))
            assert str(n) == r["answer"]
        if r["category"] == "temporal_localization":
            w = re.search(r"the word (\w+) first", r["question"]).group(1)
            first = re.search(
                rf"(?:\[|at |At |Around |At exactly )(\d\d:\d\d)\]?,? (?:Word shown: |the word ){w}\b",
                r["context"],
            )
            assert first.group(1) == r["answer"]


# ------------------------------------------------------------------------------------ settings / CLI


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(WorldError, match="text_answerable"):
        preset_config("tiny", 0, text_answerable=1.5)
    with pytest.raises(WorldError, match="preset"):
        preset_config("huge")
    from sparrow.cli import main

    with pytest.raises(SystemExit) as e:
        main(["world", "--out", str(tmp_path / "x"), "--videos", "1,2"])
    assert e.value.code == 2 and "--videos" in capsys.readouterr().err


def test_cli_generates_a_world(tmp_path, capsys):
    from sparrow.cli import main

    cfg = tmp_path / "w.yaml"
    cfg.write_text(
        "seed: 5\nshort_seconds: [4, 5]\ncorpus_docs: {train: 1, val: 1, test: 1}\ncorpus_words: [120, 160]\n"
    )
    out = tmp_path / "cli"
    args = ["world", "--out", str(out), "--config", str(cfg), "--videos", "2,1,1", "--long-videos", "0,0,0"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--phrasing", "templates", "--workers", "1"])
    assert e.value.code == 0
    info = json.loads((out / "world.json").read_text())
    assert info["seed"] == 5 and info["settings"]["phrasing"] == "templates"
    assert len(list((out / "videos").glob("*.mp4"))) == 4
    assert "sparrow world" in capsys.readouterr().out
