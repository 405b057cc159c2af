"""`sparrow sample` and `sparrow frames`: real videos in, frames that show the reported indices out."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from media import read_index, truncate, write_video
from PIL import Image

from sparrow.cli import main
from sparrow.video import Fps, open_sample, sample


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_videos")
    a = write_video(d / "a.mp4", 90, fps=30, gop=20)
    b = write_video(d / "b.mp4", 60, fps=Fraction(30000, 1001), gop=15, rotation=90, width=64, height=48)
    c = write_video(d / "c.webm", 50, codec="vp9", fps=25)
    bad = d / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    return d, {"a": a, "b": b, "c": c}, bad


def test_sample_json_and_frames(clips, tmp_path, capsys):
    _, specs, _ = clips
    spec = specs["b"]
    out = tmp_path / "frames"
    code = run(["sample", str(spec.path), "--fps", "2", "--json", "--out", str(out), "--size", "24"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    ref = sample(spec.path, Fps(2))
    assert result["indices"] == ref.indices == [0, 14, 29, 44, 59]  # 29.97 fps: 0.5 s is in frame 14
    assert result["timestamps"] == pytest.approx([spec.times[i] for i in ref.indices])
    assert result["video"]["rotation"] == 90 and result["video"]["width"] == 64
    assert len(result["frames"]) == 5
    for path, index in zip(result["frames"], result["indices"], strict=True):
        img = np.asarray(Image.open(path).convert("RGB"))
        assert img.shape == (24, 32, 3)  # rotated to 48x64, shorter side 24
        assert read_index(img) == index


def test_sample_table_and_clips(clips, capsys):
    _, specs, _ = clips
    code = run(
        [
            "sample",
            str(specs["a"].path),
            "--clips",
            "--fps",
            "4",
            "--frames-per-clip",
            "2",
            "--max-clips",
            "2",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "clip from 00:00-00:01:" in text and "4 frames" in text


def test_sample_errors_are_one_line(clips, capsys):
    _, specs, bad = clips
    assert run(["sample", str(bad), "--fps", "1"]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err and err.count("\n") == 1
    assert run(["sample", str(specs["a"].path), "--fps", "1", "--num-frames", "3"]) == 2
    assert "choose one" in capsys.readouterr().err
    assert run(["sample", str(specs["a"].path)]) == 2
    assert run(["sample", str(specs["a"].path), "--fps", "1", "--start", "9"]) == 1
    assert "start" in capsys.readouterr().err


def _frames_run(inputs, out, *extra):
    return run(["frames", *map(str, inputs), "--out", str(out), "--fps", "2", "--format", "png", *extra])


def test_frames_batch_resume_and_workers(clips, tmp_path, capsys):
    d, specs, bad = clips
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# a list\n{specs['c'].path}\n{d / 'missing.mp4'}\n")
    inputs = [specs["a"].path, specs["b"].path, bad, listing]
    one = tmp_path / "one"
    assert _frames_run(inputs, one, "--workers", "1") == 0
    manifest = [json.loads(x) for x in (one / "manifest.jsonl").read_text().splitlines()]
    errors = [json.loads(x) for x in (one / "errors.jsonl").read_text().splitlines()]
    assert [m["id"] for m in manifest] == ["a", "b", "c"]
    assert [e["id"] for e in errors] == ["broken", "missing"]
    assert all(e["source"] and e["reason"] for e in errors)
    assert all(list(e) == ["id", "line", "source", "reason"] for e in errors)  # the schema of every job
    for m in manifest:
        spec = specs[m["id"]]
        assert m["indices"] == sample(spec.path, Fps(2)).indices
        assert m["timestamps"] == pytest.approx([spec.times[i] for i in m["indices"]])
        for rel, index in zip(m["frames"], m["indices"], strict=True):
            assert read_index(np.asarray(Image.open(one / rel).convert("RGB"))) == index
    first = (one / "manifest.jsonl").read_bytes()

    # Interrupted run: forget one finished item and its frames, run again -> same output.
    state = one / ".state"
    for f in state.rglob("*.json"):
        if f.name != "fingerprint.json" and json.loads(f.read_text())["key"] == "b":
            f.unlink()
    for f in (one / "frames" / "b").iterdir():
        f.unlink()
    (one / "manifest.jsonl").unlink()
    assert _frames_run(inputs, one, "--workers", "1") == 0
    assert (one / "manifest.jsonl").read_bytes() == first
    assert "resumed" in capsys.readouterr().out

    two = tmp_path / "two"
    assert _frames_run(inputs, two, "--workers", "2") == 0
    assert (two / "manifest.jsonl").read_bytes() == first
    # Different settings into the same folder are refused, not mixed.
    assert run(["frames", str(specs["a"].path), "--out", str(one), "--fps", "5"]) == 2


def test_frames_partial_and_streaming(tmp_path):
    spec = write_video(tmp_path / "t.mkv", 100, fps=25, gop=10)
    truncate(spec.path, 0.6)
    out = tmp_path / "out"
    assert run(["frames", str(spec.path), "--out", str(out), "--fps", "5", "--workers", "1"]) == 0
    assert "truncated" in (out / "errors.jsonl").read_text()
    out2 = tmp_path / "out2"
    assert (
        run(["frames", str(spec.path), "--out", str(out2), "--fps", "5", "-j", "1", "--allow-partial"]) == 0
    )
    m = json.loads((out2 / "manifest.jsonl").read_text())
    assert m["partial"] and 0 < len(m["indices"]) < 20
    assert m["indices"] == list(range(0, 5 * len(m["indices"]), 5))
    # the streaming API yields the same frames as sample(), one at a time
    with open_sample(spec.path, Fps(5), allow_partial=True) as s:
        got = [(i, t, read_index(f)) for i, t, f in s]
        assert s.partial
    clip = sample(spec.path, Fps(5), allow_partial=True)
    assert [g[0] for g in got] == [g[2] for g in got] == clip.indices
    assert [g[1] for g in got] == clip.timestamps
