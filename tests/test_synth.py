"""sparrow synth end to end: bad records are reported with their line, missing glyphs, outputs identical
for any worker count and after a kill + resume, output formats, limits, readers, safe ids and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from synth_text import make_text

from sparrow.formats import from_llava, from_minicpm, from_sharegpt
from sparrow.jobs import JobError
from sparrow.records import load_samples, resolve_media_path
from sparrow.render import RenderConfig
from sparrow.synth import SynthConfig, SynthError, frame_dir, iter_json_array, parse_fields, synthesize

# ------------------------------------------------------------------------------------ end to end


def _write_jsonl(path: Path, rows: list) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
            f.write("\n")
    return path


def _tree_digest(root: Path) -> dict[str, str]:
    """Content hash of every file under root (the job state excluded), by relative path."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".state" not in p.parts and p.name != "summary.json":
            out[str(p.relative_to(root))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def _summary_core(root: Path) -> dict:
    d = json.loads((root / "summary.json").read_text())
    d.pop("run")
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("corpus")
    rows = [
        {
            "id": f"doc-{i:03d}",
            "context": make_text(rng, rng.randint(150, 700)),
            "question": f"Q{i}?",
            "answer": f"A{i}.",
        }
        for i in range(30)
    ]
    return _write_jsonl(root / "corpus.jsonl", rows)


@pytest.fixture(scope="module")
def reference_run(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    summary = synthesize([corpus], out, SynthConfig(), workers=1)
    assert summary.samples == 30 and summary.errors == 0
    return out


def test_bad_records_are_reported_and_job_goes_on(tmp_path):
    good = {"context": "A short context.\n\nWith two paragraphs.", "question": "What?", "answer": "This."}
    rows = [
        {**good, "id": "ok-1"},
        "{not valid json",
        {"id": "no-question", "context": "text", "answer": "x"},
        {"id": "empty", "context": "   \n ", "question": "q", "answer": "a"},
        {"id": "number", "context": 5, "question": "q", "answer": "a"},
        {**good, "id": "ok-1"},  # duplicate id
        {**good, "id": "glyph", "context": "Linear B \U00010000 sign"},
        {**good, "id": "tagged", "question": "<video>\nwhat?"},
        [1, 2, 3],
        good,  # no id: a stable one from the file and line
    ]
    inp = _write_jsonl(tmp_path / "mixed.jsonl", rows)
    out = tmp_path / "out"
    # missing glyphs as errors (the default draws placeholders: test_missing_glyphs_replace_or_error)
    cfg = SynthConfig(render=RenderConfig(missing_glyphs="error"))
    summary = synthesize([inp], out, cfg, workers=1)
    assert summary.records == 10 and summary.samples == 2 and summary.errors == 8
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    by_line = {e["line"]: e for e in errors}
    assert set(by_line) == {2, 3, 4, 5, 6, 7, 8, 9}
    assert all(list(e) == ["id", "line", "source", "reason"] for e in errors)  # the schema of every job
    assert "invalid JSON" in by_line[2]["reason"] and by_line[2]["id"] is None
    assert "missing field 'question'" in by_line[3]["reason"] and by_line[3]["id"] == "no-question"
    assert "empty" in by_line[4]["reason"]
    assert "must be a string" in by_line[5]["reason"] and "int" in by_line[5]["reason"]
    assert "duplicate id 'ok-1'" in by_line[6]["reason"] and "mixed.jsonl:1" in by_line[6]["reason"]
    assert "U+10000" in by_line[7]["reason"]
    assert "placeholder" in by_line[8]["reason"]
    assert "JSON object" in by_line[9]["reason"]
    assert all(e["source"] == "mixed.jsonl" for e in errors)
    samples, bad = load_samples(out / "samples.jsonl")
    assert not bad
    assert [s.id for s in samples] == ["ok-1", "mixed-000010"]
    s = samples[0]
    assert s.messages[0]["content"] == "<video>\nWhat?" and s.messages[1]["content"] == "This."
    assert s.media[0].type == "frames" and s.source == "mixed"
    for p in s.media[0].paths:
        img = Image.open(resolve_media_path(out, p))
        assert img.size == (448, 448)
        ink = np.asarray(img.convert("L")) < 250
        assert ink.any() and not ink[:20].any() and not ink[-20:].any() and not ink[:, :20].any()
    summary_json = json.loads((out / "summary.json").read_text())
    assert summary_json["samples"] == 2 and summary_json["frames"] == summary.frames > 0
    assert summary_json["bytes"] == sum(p.stat().st_size for p in (out / "frames").rglob("*.png"))


def test_missing_glyphs_replace_or_error(tmp_path):
    """Default: characters no font has are drawn as placeholders and counted; 'error' drops the record."""
    from typer.testing import CliRunner

    from sparrow.cli import app

    glyphs = "Linear B \U00010000 sign, \U00010000 again and \U00010001 too."
    rows = [
        {"id": "glyph", "context": glyphs, "question": "q", "answer": "a"},
        {"id": "plain", "context": "Linear B sign, again and too.", "question": "q", "answer": "a"},
    ]
    inp = _write_jsonl(tmp_path / "in.jsonl", rows)
    s = synthesize([inp], tmp_path / "replace", SynthConfig(), workers=1)
    assert (s.samples, s.errors, s.missing_glyphs, s.missing_glyph_samples) == (2, 0, 3, 1)
    samples = [json.loads(x) for x in (tmp_path / "replace" / "samples.jsonl").read_text().splitlines()]
    assert samples[0]["meta"]["missing_glyphs"] == 3 and "missing_glyphs" not in samples[1]["meta"]
    written = json.loads((tmp_path / "replace" / "summary.json").read_text())
    assert written["missing_glyphs"] == 3 and written["missing_glyph_samples"] == 1
    # the placeholders are ink: the frame with them has more of it than the same text without them
    ink = [
        (np.asarray(Image.open(tmp_path / "replace" / x["media"][0]["paths"][0]).convert("L")) < 128).sum()
        for x in samples
    ]
    assert ink[0] > ink[1] > 0

    s = synthesize([inp], tmp_path / "error", SynthConfig(render=RenderConfig(missing_glyphs="error")))
    assert (s.samples, s.errors, s.missing_glyphs) == (1, 1, 0)
    (err,) = [json.loads(x) for x in (tmp_path / "error" / "errors.jsonl").read_text().splitlines()]
    assert err["id"] == "glyph" and "U+10000" in err["reason"] and "U+10001" in err["reason"]

    res = CliRunner().invoke(app, ["synth", str(inp), "--out", str(tmp_path / "cli"), "-j", "1"])
    assert res.exit_code == 0, res.output
    assert res.output.count("placeholder boxes in 1 sample") == 1 and "3 characters" in res.output
    res = CliRunner().invoke(
        app, ["synth", str(inp), "--out", str(tmp_path / "cli2"), "-j", "1", "--missing-glyphs", "error"]
    )
    assert res.exit_code == 0 and "placeholder boxes" not in res.output
    assert len((tmp_path / "cli2" / "errors.jsonl").read_text().splitlines()) == 1


def test_worker_count_does_not_change_output(corpus, reference_run, tmp_path):
    out = tmp_path / "two"
    synthesize([corpus], out, SynthConfig(), workers=2)
    assert _tree_digest(out) == _tree_digest(reference_run)
    assert _summary_core(out) == _summary_core(reference_run)


def test_resume_after_kill_gives_identical_output(corpus, reference_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sparrow", "synth", str(corpus), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out / ".state"
    deadline = time.monotonic() + 60
    killed_at = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(list(state.glob("*/*.json"))) if state.exists() else 0
        if done >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = done
            break
        time.sleep(0.005)
    proc.wait()
    assert killed_at, "the job finished before it could be killed"
    assert not (out / "samples.jsonl").exists()  # outputs only appear complete
    # a kill in the middle of a record leaves a partial directory (and maybe a half-filled final one)
    rel = Path(frame_dir("doc-029"))
    stale = out / rel.parent / f".{rel.name}.partial"
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "00000.png").write_bytes(b"half a frame")
    (out / rel).mkdir(parents=True, exist_ok=True)
    (out / rel / "00099.png").write_bytes(b"stale frame")
    summary = synthesize([corpus], out, SynthConfig(), workers=2)
    assert 3 <= summary.run["resumed_records"] < 30
    assert _tree_digest(out) == _tree_digest(reference_run)
    assert not stale.exists()
    assert _summary_core(out) == _summary_core(reference_run)


def test_resume_after_limit_and_settings_guard(corpus, reference_run, tmp_path):
    out = tmp_path / "limited"
    first = synthesize([corpus], out, SynthConfig(), workers=1, limit=5)
    assert first.records == 5
    # a record killed half-way: its directory holds a stale extra frame and a partial directory
    samples, _ = load_samples(out / "samples.jsonl")
    summary = synthesize([corpus], out, SynthConfig(), workers=1)
    assert summary.run["resumed_records"] == 5 and summary.samples == 30
    assert _tree_digest(out) == _tree_digest(reference_run)
    assert len(samples) == 5
    with pytest.raises(JobError, match="different settings"):
        synthesize([corpus], out, SynthConfig(units_per_frame=50), workers=1)
    synthesize([corpus], out, SynthConfig(units_per_frame=50), workers=1, overwrite=True, limit=2)
    assert len(list((out / "frames").glob("*/*"))) == 2  # the earlier run's frames were discarded


def test_formats_round_trip(tmp_path):
    rows = [
        {"id": f"r{i}", "context": make_text(random.Random(i), 300), "question": "Q?", "answer": "A."}
        for i in range(3)
    ]
    inp = _write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    synthesize([inp], out, SynthConfig(), workers=1, formats=("llava", "sharegpt", "minicpm"))
    native, _ = load_samples(out / "samples.jsonl")
    llava = json.loads((out / "llava.json").read_text())
    sharegpt = json.loads((out / "sharegpt.json").read_text())
    minicpm = json.loads((out / "minicpm.json").read_text())
    assert len(llava) == len(sharegpt) == len(minicpm) == 3
    for s, lv, sg, mc in zip(native, llava, sharegpt, minicpm, strict=True):
        assert lv["video"] == str(Path(s.media[0].paths[0]).parent)
        assert lv["conversations"][0] == {"from": "human", "value": "<video>\nQ?"}
        back = from_llava(lv, root=out)
        assert back.media[0].paths == s.media[0].paths and back.messages == s.messages
        back = from_sharegpt(sg)
        assert back.media[0].paths == s.media[0].paths and back.messages == s.messages
        n = len(s.media[0].paths)
        assert mc["conversations"][0]["content"].startswith("<image_00>\n")
        assert mc["conversations"][0]["content"].count("<image_") == n
        back = from_minicpm(mc)
        assert back.media[0].paths == s.media[0].paths and back.messages == s.messages


def test_limits_drop_or_truncate(tmp_path):
    rows = [{"id": "long", "context": make_text(random.Random(3), 900), "question": "Q?", "answer": "A."}]
    inp = _write_jsonl(tmp_path / "in.jsonl", rows)
    s = synthesize([inp], tmp_path / "drop", SynthConfig(max_frames=2), workers=1)
    assert s.samples == 0 and s.errors == 1
    reason = json.loads((tmp_path / "drop" / "errors.jsonl").read_text())["reason"]
    assert "max frames 2" in reason
    s = synthesize([inp], tmp_path / "trunc", SynthConfig(max_frames=2, truncate=True), workers=1)
    sample = json.loads((tmp_path / "trunc" / "samples.jsonl").read_text())
    assert s.truncated == 1 and len(sample["media"][0]["paths"]) == 2 and sample["meta"]["truncated"]
    s = synthesize([inp], tmp_path / "budget", SynthConfig(max_tokens=200), workers=1)
    reason = json.loads((tmp_path / "budget" / "errors.jsonl").read_text())["reason"]
    assert "max tokens 200" in reason and "96 x" in reason
    s = synthesize([inp], tmp_path / "budget2", SynthConfig(max_tokens=200, truncate=True), workers=1)
    sample = json.loads((tmp_path / "budget2" / "samples.jsonl").read_text())
    text_tokens = sample["meta"]["text_tokens"]
    assert text_tokens + 96 * len(sample["media"][0]["paths"]) <= 200


def test_json_array_streaming(tmp_path):
    rows = [
        {
            "id": f"a{i}",
            "context": f'Text {i} with "quotes", \\backslashes\\ and ünïcode 中 {"x" * i}',
            "question": "q",
            "answer": "a",
        }
        for i in range(30)
    ]
    path = tmp_path / "arr.json"
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    got = list(iter_json_array(path, chunk_chars=7))  # tiny chunks: elements span many refills
    assert [r.value for r in got] == rows and [r.line for r in got] == list(range(1, 31))
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "x", "context": "c"}, {"id": oops}]')
    got = list(iter_json_array(bad, chunk_chars=5))
    assert got[0].value == {"id": "x", "context": "c"} and got[1].error and "element 2" in got[1].error
    truncated = tmp_path / "trunc.json"
    truncated.write_text('[{"id": "x"}, {"id": "y", "context": "never clo')
    got = list(iter_json_array(truncated, chunk_chars=4))
    assert got[0].value == {"id": "x"} and got[-1].error


def test_parquet_and_field_mapping(tmp_path):
    table = pa.table(
        {
            "uid": ["p1", "p2"],
            "body": [make_text(random.Random(1), 120), make_text(random.Random(2), 80)],
            "qa": [{"q": "First?", "a": "One."}, {"q": "Second?", "a": "Two."}],
            "unused": [1, 2],
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    fields = parse_fields("context=body,question=qa.q,answer=qa.a,id=uid")
    out = tmp_path / "out"
    s = synthesize([path], out, SynthConfig(fields=fields), workers=1)
    assert s.samples == 2
    samples, _ = load_samples(out / "samples.jsonl")
    assert [x.id for x in samples] == ["p1", "p2"]
    assert (
        samples[1].messages[0]["content"] == "<video>\nSecond?"
        and samples[1].messages[1]["content"] == "Two."
    )
    with pytest.raises(SynthError, match="NAME=KEY"):
        parse_fields("context")


def test_ids_are_filesystem_safe(tmp_path):
    rows = [
        {"id": "../../escape", "context": "Some text.", "question": "q", "answer": "a"},
        {"id": "a/b:c*d", "context": "Other text.", "question": "q", "answer": "a"},
    ]
    inp = _write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    synthesize([inp], out, SynthConfig(), workers=1)
    samples, bad = load_samples(out / "samples.jsonl")  # load_samples refuses paths leaving the root
    assert not bad and [s.id for s in samples] == ["../../escape", "a/b:c*d"]
    for s in samples:
        for p in s.media[0].paths:
            full = resolve_media_path(out, p)
            assert (out / "frames") in full.parents and full.is_file()


def test_cli_runs_and_reports(tmp_path):
    from typer.testing import CliRunner

    from sparrow.cli import app

    rows = [
        {"id": "c1", "context": "Hello frames.", "question": "q", "answer": "a"},
        "not json",
    ]
    inp = _write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["synth", str(inp), "--out", str(out), "-j", "1", "--image-format", "jpg", "--format", "llava"]
    )
    assert res.exit_code == 0, res.output
    assert "samples" in res.output
    sample = json.loads((out / "samples.jsonl").read_text())
    assert sample["media"][0]["paths"][0].endswith(".jpg")
    img = Image.open(io.BytesIO((out / sample["media"][0]["paths"][0]).read_bytes()))
    assert img.format == "JPEG"
    assert (out / "llava.json").exists() and len((out / "errors.jsonl").read_text().splitlines()) == 1
    res = CliRunner().invoke(app, ["synth", str(inp), "--out", str(out / "x"), "--fields", "bogus"])
    assert res.exit_code != 0
