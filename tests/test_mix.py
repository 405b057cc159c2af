"""sparrow mix: exact counts and ratios, reproducible for a seed, media paths rewritten and confined, and
LLaVA / ShareGPT / MiniCPM-V outputs that load back through the project's own readers."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from sparrow.formats import from_llava, from_minicpm, from_sharegpt
from sparrow.io import write_jsonl
from sparrow.mix import MixConfig, MixError, MixSource, parse_source_spec, write_mix
from sparrow.records import Media, load_samples, qa_sample


def _frames_file(root: Path, name: str, n: int, frames: int = 3) -> Path:
    """A synth-like sample file: each record's frames in a directory of their own, files present."""
    recs = []
    for i in range(n):
        rel = [f"frames/{name}-{i:03d}/{k:05d}.png" for k in range(frames)]
        for p in rel:
            (root / p).parent.mkdir(parents=True, exist_ok=True)
            (root / p).write_bytes(b"")
        media = [Media(type="frames", paths=rel)]
        recs.append(qa_sample(f"{name}-{i:03d}", f"Q{i} of {name}?", f"A{i}.", media=media, source=name))
    return _write(root / f"{name}.jsonl", recs)


def _video_file(root: Path, name: str, n: int) -> Path:
    recs = [
        qa_sample(
            f"{name}-{i:03d}",
            f"Describe clip {i}.",
            f"Clip {i}.",
            [Media(type="video", path=f"videos/{i}.mp4")],
        )
        for i in range(n)
    ]
    return _write(root / f"{name}.jsonl", recs)


def _write(path: Path, recs: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, recs)
    return path


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    root = tmp_path / "data"
    return {
        "captions": _frames_file(root / "video", "captions", 30),
        "qa": _frames_file(root / "video", "qa", 25),
        "synth": _frames_file(root / "synth", "synth", 40),
        "clips": _video_file(root / "clips", "clips", 12),
    }


def _mix(data, amounts: dict[str, float], out: Path, **kw) -> dict:
    sources = [MixSource(str(data[k]), v) for k, v in amounts.items()]
    return write_mix(MixConfig(sources=sources, **kw), out).manifest


def _drawn_sources(out: Path, name: str = "mix") -> Counter:
    samples, bad = load_samples(out / f"{name}.jsonl")
    assert not bad
    return Counter(s.source for s in samples)


def test_counts_are_drawn_exactly_without_repeats(data, tmp_path):
    m = _mix(data, {"captions": 10, "qa": 10, "synth": 10}, tmp_path)
    assert [(s["name"], s["requested"], s["available"], s["drawn"]) for s in m["sources"]] == [
        ("captions", 10, 30, 10),
        ("qa", 10, 25, 10),
        ("synth", 10, 40, 10),
    ]
    assert _drawn_sources(tmp_path) == {"captions": 10, "qa": 10, "synth": 10}
    samples, _ = load_samples(tmp_path / "mix.jsonl")
    assert len({s.id for s in samples}) == 30 and all(s["repeats"] == 0 for s in m["sources"])
    # the draw is interleaved, not one source after another
    assert {s.source for s in samples[:6]} != {samples[0].source}


def test_ratio_shares_are_exact(data, tmp_path):
    m = _mix(data, {"captions": 2, "synth": 1}, tmp_path, by="ratio", total=30)
    assert [s["drawn"] for s in m["sources"]] == [20, 10] and m["total"] == 30
    # no total: the largest mix with no record drawn twice (captions' 30 records bound it at 45)
    m = _mix(data, {"captions": 2, "synth": 1}, tmp_path, by="ratio", name="b")
    assert [s["drawn"] for s in m["sources"]] == [30, 15] and m["sources"][0]["ratio"] == 2


def test_same_seed_same_bytes_other_seed_other_draw(data, tmp_path):
    amounts = {"captions": 8, "qa": 8, "synth": 8}
    m1 = _mix(data, amounts, tmp_path, seed=3, name="a")
    m2 = _mix(data, amounts, tmp_path, seed=3, name="b")
    m3 = _mix(data, amounts, tmp_path, seed=4, name="c")
    for f in (".jsonl", ".llava.json", ".sharegpt.json", ".minicpm.json"):
        assert (tmp_path / f"a{f}").read_bytes() == (tmp_path / f"b{f}").read_bytes()
    assert [o["sha256"] for o in m1["outputs"]] == [o["sha256"] for o in m2["outputs"]]
    ids = [json.loads(x)["id"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    ids3 = [json.loads(x)["id"] for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert set(ids) != set(ids3) and Counter(m3["sources"][i]["drawn"] for i in range(3)) == {8: 3}


def test_too_few_records_need_allow_repeats(data, tmp_path):
    with pytest.raises(MixError, match=r"'qa': 30 records requested, 25 valid"):
        _mix(data, {"qa": 30}, tmp_path)
    assert not (tmp_path / "mix.jsonl").exists()
    m = _mix(data, {"qa": 30, "synth": 5}, tmp_path, allow_repeats=True)
    qa = m["sources"][0]
    assert (qa["requested"], qa["available"], qa["drawn"], qa["unique"], qa["repeats"]) == (30, 25, 30, 25, 5)


def test_media_paths_rewritten_relative_to_output(data, tmp_path):
    _mix(data, {"captions": 2, "synth": 2}, tmp_path)
    samples, bad = load_samples(tmp_path / "mix.jsonl")  # the reader confines media to tmp_path
    assert not bad
    for s in samples:
        for p in s.media[0].paths:
            assert not Path(p).is_absolute() and (tmp_path / p).is_file()
            assert p.startswith("data/video/frames/" if s.source == "captions" else "data/synth/frames/")
    # an output directory that does not hold the media cannot point back at it
    with pytest.raises(MixError, match="outside the output directory"):
        _mix(data, {"synth": 2}, tmp_path / "data" / "video")


def test_paths_escaping_their_dataset_root_are_refused(data, tmp_path):
    good = load_samples(data["synth"])[0][:3]
    evil = qa_sample("evil", "Q?", "A.", [Media(type="frames", paths=["../../../etc/passwd"])])
    src = _write(tmp_path / "data" / "synth" / "mixed.jsonl", [*good, evil])
    m = write_mix(MixConfig(sources=[MixSource(str(src), 3)]), tmp_path).manifest
    (row,) = m["sources"]
    assert (row["available"], row["drawn"], row["lines"]) == (3, 3, 4)
    assert (
        row["invalid_lines"][0]["line"] == 4
        and "outside the dataset root" in row["invalid_lines"][0]["reason"]
    )
    with pytest.raises(MixError, match="4 records requested, 3 valid"):
        write_mix(MixConfig(sources=[MixSource(str(src), 4)]), tmp_path)


def _same(a, b) -> None:
    assert [(x.id, x.messages, x.media) for x in a] == [(y.id, y.messages, y.media) for y in b]


def test_formats_load_back_through_the_project_readers(data, tmp_path):
    _mix(data, {"captions": 5, "qa": 5, "synth": 5}, tmp_path, seed=1)
    native, _ = load_samples(tmp_path / "mix.jsonl")
    llava = json.loads((tmp_path / "mix.llava.json").read_text())
    sharegpt = json.loads((tmp_path / "mix.sharegpt.json").read_text())
    minicpm = json.loads((tmp_path / "mix.minicpm.json").read_text())
    _same([from_llava(d, root=tmp_path) for d in llava], native)
    _same([from_sharegpt(d) for d in sharegpt], native)
    _same([from_minicpm(d) for d in minicpm], native)


def test_video_files_go_to_llava_and_sharegpt_not_minicpm(data, tmp_path):
    m = _mix(data, {"clips": 4, "synth": 2}, tmp_path, formats=("llava", "sharegpt"))
    assert [o["format"] for o in m["outputs"]] == ["native", "llava", "sharegpt"]
    native, _ = load_samples(tmp_path / "mix.jsonl")
    assert {s.media[0].path for s in native if s.media[0].type == "video"} <= {
        f"data/clips/videos/{i}.mp4" for i in range(12)
    }
    _same(
        [from_llava(d, root=tmp_path) for d in json.loads((tmp_path / "mix.llava.json").read_text())], native
    )
    _same([from_sharegpt(d) for d in json.loads((tmp_path / "mix.sharegpt.json").read_text())], native)
    with pytest.raises(MixError, match="cannot be written as minicpm"):
        _mix(data, {"clips": 4}, tmp_path, name="m")
    assert not (tmp_path / "m.jsonl").exists()


def test_source_specs_and_bad_configs():
    assert parse_source_spec("data/qa.jsonl=10000") == MixSource("data/qa.jsonl", 10000.0)
    assert parse_source_spec("video:data/qa.jsonl=2") == MixSource("data/qa.jsonl", 2.0, "video")
    for bad in ("data/qa.jsonl", "=3", "a.jsonl=ten"):
        with pytest.raises(MixError):
            parse_source_spec(bad)
    for cfg, match in [
        (MixConfig(sources=[]), "at least one"),
        (MixConfig(sources=[MixSource("a.jsonl", 1.5)]), "whole number"),
        (MixConfig(sources=[MixSource("a.jsonl", 1)], total=5), "total"),
        (MixConfig(sources=[MixSource("a/s.jsonl", 1), MixSource("b/s.jsonl", 1)]), "both named 's'"),
        (MixConfig(sources=[MixSource("a.jsonl", 1)], formats=("webdataset",)), "unknown format"),
        (MixConfig(sources=[MixSource("a.jsonl", 1)], by="share"), "choose one of"),
    ]:
        with pytest.raises(MixError, match=match):
            cfg.validate()


def test_cli(data, tmp_path):
    from typer.testing import CliRunner

    from sparrow.cli import app

    args = ["mix", f"video:{data['captions']}=6", f"{data['synth']}=3", "-o", str(tmp_path), "--seed", "2"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "mix.manifest.json").read_text())
    assert [(s["name"], s["drawn"]) for s in manifest["sources"]] == [("video", 6), ("synth", 3)]
    assert {o["file"] for o in manifest["outputs"]} == {
        "mix.jsonl",
        "mix.llava.json",
        "mix.sharegpt.json",
        "mix.minicpm.json",
    }
    res = CliRunner().invoke(app, ["mix", f"{data['qa']}=99", "-o", str(tmp_path / "x")])
    assert res.exit_code != 0 and "25 valid" in str(res.exception)


def test_a_video_segment_is_never_widened_to_the_whole_video(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "v0.mp4").write_bytes(b"")
    clip = Media(type="video", path="videos/v0.mp4", start=2.0, end=4.0)
    whole = Media(type="video", path="videos/v0.mp4")
    src = _write(
        tmp_path / "clips.jsonl",
        [qa_sample("clip", "What happens?", "A 2 s event.", [clip]), qa_sample("whole", "Q?", "A.", [whole])],
    )
    for fmt in ("llava", "sharegpt"):
        cfg = MixConfig(sources=[MixSource(str(src), 2)], formats=(fmt,))
        with pytest.raises(MixError, match=r"cannot hold the segment 2-4s of 'videos/v0.mp4'"):
            write_mix(cfg, tmp_path)
        assert not (tmp_path / "mix.jsonl").exists()  # nothing half-written
    write_mix(MixConfig(sources=[MixSource(str(src), 2)], formats=()), tmp_path)  # native keeps it
    native, _ = load_samples(tmp_path / "mix.jsonl")
    assert {s.id: (s.media[0].start, s.media[0].end) for s in native} == {
        "clip": (2.0, 4.0),
        "whole": (None, None),
    }


def test_refine_records_go_through_mix_and_train(tmp_path, capsys):
    """refine -> mix (--media-root) -> train on a tiny model: refine's OUT/captions.jsonl points at
    ../videos, which a mix refuses unless the folder holding both is the media root."""
    import re

    import yaml
    from conftest import completion, openai_app
    from media import write_video
    from train_data import model_config, stage

    from sparrow.caption_metrics import TrinityConfig
    from sparrow.cli import main
    from sparrow.refine.config import RefineConfig
    from sparrow.refine.run import refine
    from sparrow.serve.server import ServerThread
    from sparrow.train.rundir import read_metrics

    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    asr = {}
    for i in range(3):
        write_video(data / "videos" / f"v{i}.mp4", num_frames=20, fps=10, width=32, height=32)
        asr[f"v{i}"] = {"start": [0.0], "end": [1.0], "text": [f"a red circle number {i}"]}
    (data / "asr.json").write_text(json.dumps(asr))

    def chat(body: dict):
        user = body["messages"][-1]["content"]
        return completion(
            "\n".join(f"{t}s: {x}." for t, x in re.findall(r"^(\d+)s: (.+)$", user, re.M)), 1, 1
        )

    with ServerThread(openai_app("m", chat)) as server:
        cfg = RefineConfig(backend="openai", base_url=server.url, retries=0, cache=str(tmp_path / "cache"))
        s = refine(
            data / "asr.json", data / "videos", data / "refined", cfg, trinity=TrinityConfig(vendi=False)
        )
    assert s.records == 3
    records = data / "refined" / "captions.jsonl"
    assert json.loads(records.read_text().splitlines()[0])["media"][0]["path"] == "../videos/v0.mp4"

    def cli(*args: str) -> int:
        with pytest.raises(SystemExit) as e:
            main(list(args))
        return int(e.value.code or 0)

    assert cli("mix", f"{records}=3", "-o", str(data), "--format", "native") == 2
    err = capsys.readouterr().err
    assert "resolves outside" in err and "--media-root" in err
    assert cli("mix", f"{records}=3", "-o", str(data), "--format", "native", "--media-root", str(data)) == 0
    mixed, bad = load_samples(data / "mix.jsonl")
    assert not bad and sorted(m.media[0].path for m in mixed) == [f"videos/v{i}.mp4" for i in range(3)]
    assert all((m.media[0].start, m.media[0].end) == (0.0, 2.0) for m in mixed)  # an 8 s caption, a 2 s video
    recipe = {
        "model": model_config(),
        "seed": 0,
        "num_workers": 0,
        "stages": [
            stage("tune", ["connector"], 1, [{"path": "mix.jsonl"}], batch_size=2, micro_batch_size=1)
        ],
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    args = ["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--data-root", str(data)]
    assert cli(*args, "--threads", "1") == 0
    [row] = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert math.isfinite(row["loss"]) and row["samples"] == 2 and row["skipped"] == 0
