"""sparrow.records and sparrow.formats: the native record, converters to and from LLaVA / ShareGPT /
MiniCPM-V, streaming reader that reports bad lines with their numbers, root-confined media paths, atomic
writers."""

from __future__ import annotations

import json
import os

import pytest

from sparrow.formats import (
    convert,
    from_llava,
    from_minicpm,
    from_sharegpt,
    to_llava,
    to_minicpm,
    to_sharegpt,
)
from sparrow.io import JsonlWriter, LineError, atomic_write_text, write_jsonl
from sparrow.records import (
    Media,
    RecordError,
    Sample,
    load_samples,
    qa_sample,
    read_samples,
    resolve_media_path,
)


def _frames_sample(n: int = 3) -> Sample:
    paths = [f"frames/ab/s1/{i:05d}.png" for i in range(n)]
    return qa_sample(
        "s1", "What does the text say?", "It says hello.", media=[Media(type="frames", paths=paths)]
    )


def test_native_round_trip_and_validation():
    s = _frames_sample()
    s.meta = {"frames": 3}
    d = json.loads(json.dumps(s.to_dict()))
    back = Sample.from_dict(d)
    assert back == s and back.media_kind == "video"
    assert back.messages[0]["content"] == "<video>\nWhat does the text say?"
    with pytest.raises(RecordError, match="placeholders"):
        Sample.from_dict({**d, "media": []})
    with pytest.raises(RecordError, match="id"):
        Sample.from_dict({**d, "id": ""})
    with pytest.raises(RecordError, match="role"):
        Sample.from_dict({**d, "messages": [{"role": "robot", "content": "x"}]})
    with pytest.raises(RecordError, match="timestamps"):
        Media.from_dict({"type": "frames", "paths": ["a.png", "b.png"], "timestamps": [0.0]})
    with pytest.raises(RecordError, match="end"):
        Media.from_dict({"type": "video", "path": "v.mp4", "start": 5, "end": 2})
    two = qa_sample(
        "m", "Compare.", "Same.", media=[Media(type="image", path="a.png"), Media(type="image", path="b.png")]
    )
    assert two.messages[0]["content"] == "<image>\n<image>\nCompare." and two.media_kind == "multi-image"
    assert qa_sample("t", "Q", "A").media_kind == "text"


def test_llava_round_trip(tmp_path):
    s = _frames_sample()
    d = to_llava(s)
    assert d == {
        "id": "s1",
        "conversations": [
            {"from": "human", "value": "<video>\nWhat does the text say?"},
            {"from": "gpt", "value": "It says hello."},
        ],
        "video": "frames/ab/s1",
    }
    # reading it back with the frame directory present gives the sorted frames again
    frame_dir = tmp_path / "frames" / "ab" / "s1"
    frame_dir.mkdir(parents=True)
    for p in reversed(s.media[0].paths):
        (tmp_path / p).write_bytes(b"png")
    (frame_dir / "notes.txt").write_text("not a frame")
    back = from_llava(d, root=tmp_path)
    assert back.media == s.media and back.messages == s.messages
    # without the directory (or a root) the value is a video file
    v = qa_sample("v1", "Q?", "A.", media=[Media(type="video", path="videos/v1.mp4")])
    assert from_llava(to_llava(v)).media == v.media
    imgs = qa_sample(
        "i1", "Q?", "A.", media=[Media(type="image", path="a.png"), Media(type="image", path="b.png")]
    )
    assert to_llava(imgs)["image"] == ["a.png", "b.png"] and from_llava(to_llava(imgs)).media == imgs.media
    with pytest.raises(RecordError, match="videos and images"):
        to_llava(
            Sample(
                "x",
                [{"role": "user", "content": "<video><image>q"}],
                [Media("video", "v.mp4"), Media("image", "a.png")],
            )
        )
    with pytest.raises(RecordError, match="outside"):
        from_llava({**d, "video": "../../etc"}, root=tmp_path)


def test_sharegpt_round_trip():
    s = Sample(
        id="mix",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "<image>\nFirst this, then <video>\nwhat changed?"},
            {"role": "assistant", "content": "The light."},
        ],
        media=[Media(type="image", path="a.png"), Media(type="frames", paths=["f/0.png", "f/1.png"])],
    )
    d = to_sharegpt(s)
    assert d["images"] == ["a.png"] and d["videos"] == [["f/0.png", "f/1.png"]]
    assert d["messages"] == s.messages
    back = from_sharegpt(d)
    assert back.media == s.media and back.messages == s.messages and back.id == "mix"
    with pytest.raises(RecordError, match="more <video> tags"):
        from_sharegpt({**d, "videos": []})
    with pytest.raises(RecordError, match="more 'videos'"):
        from_sharegpt({**d, "videos": d["videos"] * 2})


def test_minicpm_round_trip():
    s = _frames_sample(12)
    d = to_minicpm(s)
    assert list(d["image"]) == [f"<image_{i:02d}>" for i in range(12)]
    user = d["conversations"][0]["content"]
    assert user.startswith("<image_00>\n<image_01>\n") and user.endswith("\nWhat does the text say?")
    assert "<video>" not in user
    back = from_minicpm(d)
    assert back.media == s.media and back.messages == s.messages
    one = qa_sample("i", "Q?", "A.", media=[Media(type="image", path="a.png")])
    d1 = to_minicpm(one)
    assert d1["image"] == "a.png" and d1["conversations"][0]["content"] == "<image>\nQ?"
    assert from_minicpm(d1).media == one.media
    with pytest.raises(RecordError, match="extract frames"):
        to_minicpm(qa_sample("v", "Q", "A", media=[Media(type="video", path="v.mp4")]))
    assert convert(s, "native") == s.to_dict() and convert(s, "minicpm") == d
    with pytest.raises(RecordError, match="unknown format"):
        convert(s, "alpaca")


def test_minicpm_keeps_order_beyond_100_frames():
    s = _frames_sample(120)
    back = from_minicpm(json.loads(json.dumps(to_minicpm(s))))
    assert back.media[0].paths == s.media[0].paths


def test_path_traversal_refused(tmp_path):
    root = tmp_path / "data"
    (root / "videos").mkdir(parents=True)
    (tmp_path / "secret.mp4").write_bytes(b"x")
    assert resolve_media_path(root, "videos/a.mp4") == (root / "videos" / "a.mp4").resolve()
    for bad in ("../secret.mp4", "videos/../../secret.mp4", str(tmp_path / "secret.mp4"), "/etc/passwd"):
        with pytest.raises(RecordError, match="outside the dataset root"):
            resolve_media_path(root, bad)
    # a symlink inside the root that points outside is refused too
    os.symlink(tmp_path / "secret.mp4", root / "videos" / "link.mp4")
    with pytest.raises(RecordError, match="outside"):
        resolve_media_path(root, "videos/link.mp4")
    with pytest.raises(RecordError, match="empty"):
        resolve_media_path(root, "")
    # an explicit media root confines paths to it instead
    assert resolve_media_path(root, "secret.mp4", media_root=tmp_path) == (tmp_path / "secret.mp4").resolve()


def test_read_samples_reports_bad_lines_with_numbers(tmp_path):
    good = _frames_sample(2).to_dict()
    lines = [
        json.dumps(good),
        "",
        "{broken json",
        json.dumps({**good, "id": 7}),
        json.dumps({**good, "media": [{"type": "frames", "paths": ["../../outside.png", "x.png"]}]}),
        json.dumps([1, 2]),
        json.dumps({**good, "id": "s2"}),
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = list(read_samples(path))
    assert [type(x).__name__ for x in items] == [
        "Sample",
        "LineError",
        "LineError",
        "LineError",
        "LineError",
        "Sample",
    ]
    errors = [x for x in items if isinstance(x, LineError)]
    assert [e.line for e in errors] == [3, 4, 5, 6]
    assert "invalid JSON" in errors[0].reason and "id" in errors[1].reason
    assert "outside" in errors[2].reason and "JSON object" in errors[3].reason
    assert all(e.source == str(path) for e in errors)
    good_samples, bad = load_samples(path, check_paths=False)
    assert len(good_samples) == 3 and len(bad) == 3  # the escaping path is only refused when checked


def test_writers_are_atomic(tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), JsonlWriter(out) as w:
        w.write({"a": 1})
        raise RuntimeError("stop")
    assert not out.exists() and not list(tmp_path.iterdir())
    assert write_jsonl(out, [_frames_sample(1), {"b": 2}]) == 2
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["id"] == "s1" and rows[1] == {"b": 2}
    atomic_write_text(out, "new")
    assert out.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
