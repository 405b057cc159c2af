"""Property-based tests (hypothesis) of the other files a user feeds: ``sparrow mix`` sources, the
transcripts ``sparrow refine`` reads and the caption files ``sparrow trinity`` scores.

For any input: no traceback reaches the user (exit 0, or a one-line error with exit 2), every input
record is accounted for (an output or an error row), and the command exits non-zero exactly when
nothing useful was made (for trinity: when an entry was malformed)."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparrow.captions import CaptionsError, Transcript, parse_entry, read_entries
from sparrow.cli import main

FUZZ = settings(
    max_examples=20,
    deadline=20_000,  # ms; generous: the machine running the suite may be loaded
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEXT = st.lists(
    st.sampled_from([*'ab c.\n"\\{}:/é中文', "<video>", "<image>", "\u2028", "ﾟ"]), max_size=10
).map("".join)
JSON_LEAF = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | TEXT
JSON_VALUE = st.recursive(
    JSON_LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=6
)


def run(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        pytest.raises(SystemExit) as e,
    ):
        main(list(args))
    return int(e.value.code or 0), err.getvalue()


def no_traceback(code: int, err: str) -> None:
    assert code in (0, 2), err  # 1: an unexpected exception reached the top level
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------------ mix

MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "bot"]), "content": TEXT}
)
MEDIA = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["video", "frames", "image", "audio"]),
        "path": st.sampled_from(["v.mp4", "../v.mp4", "/etc/passwd", "", "f/0.png"]),
        "paths": st.lists(st.sampled_from(["f/0.png", "f/1.png", "../x.png"]), max_size=2),
        "start": st.none() | st.floats(0, 5),
        "end": st.none() | st.floats(0, 5),
    }
)
SAMPLE = st.fixed_dictionaries(
    {
        "id": TEXT | st.integers(),
        "messages": st.lists(MESSAGE, max_size=3),
        "media": st.lists(MEDIA, max_size=2),
    }
)
LINE = SAMPLE.map(json.dumps) | JSON_VALUE.map(json.dumps) | st.sampled_from(["{broken", "", "[]"])


@FUZZ
@given(
    st.lists(LINE, max_size=6),
    st.integers(1, 3),
    st.sampled_from(["native", "llava", "sharegpt", "minicpm"]),
)
def test_mix_sources_are_accounted_for(lines, count, fmt):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "f").mkdir()
        for name in ("v.mp4", "f/0.png", "f/1.png"):
            (root / name).write_bytes(b"")
        (root / "src.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        code, err = run("mix", f"{root / 'src.jsonl'}={count}", "-o", str(root), "--format", fmt)
        no_traceback(code, err)
        written = root / "mix.jsonl"
        if code != 0:  # nothing made, and nothing half-written
            assert not written.exists() and not (root / "mix.manifest.json").exists()
            return
        manifest = json.loads((root / "mix.manifest.json").read_text())
        [src] = manifest["sources"]
        assert src["available"] + len(src["invalid_lines"]) == sum(bool(x.strip()) for x in lines)
        assert src["drawn"] == count and len(written.read_text().splitlines()) == count


# --------------------------------------------------------------------------------------------- refine

NUMBER = (
    st.integers(-1, 6) | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["1", None, True])
)
ENTRY = (
    st.integers(0, 3).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "start": st.lists(NUMBER, min_size=n, max_size=n),
                "end": st.lists(NUMBER, min_size=n, max_size=n),
                "text": st.lists(TEXT | st.none(), min_size=n, max_size=n),
            }
        )
    )
    | JSON_VALUE
)
CAPTION_FILE = st.dictionaries(st.sampled_from(["v0", "v1", "v2", "x y", "中"]), ENTRY, max_size=4)


def entries_ok(data: dict) -> bool:
    try:
        for vid, entry in data.items():
            parse_entry(vid, entry)
    except CaptionsError:
        return False
    return True


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from media import write_video

    d = tmp_path_factory.mktemp("videos")
    write_video(d / "v0.mp4", num_frames=20, fps=10, width=32, height=32)
    return d


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@FUZZ
@given(CAPTION_FILE | JSON_VALUE)
def test_refine_accounts_for_every_transcript_entry(videos, data):
    url = f"http://127.0.0.1:{closed_port()}/v1"  # nobody listens: every request fails fast
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "caption.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        if not isinstance(data, dict):
            with pytest.raises(CaptionsError):
                read_entries(path)
        else:
            entries = read_entries(path)
            assert len(entries) == len(data)
            assert all(
                isinstance(e, Transcript) or set(e) == {"id", "line", "source", "reason"} for e in entries
            )
        out = Path(d) / "out"
        args = ["refine", str(path), "--videos", str(videos), "--out", str(out), "--backend", "openai"]
        code, err = run(*args, "--base-url", url, "--model", "m", "--retries", "0", "-j", "1")
        no_traceback(code, err)
        assert code == 2  # no request can succeed: nothing was made
        if isinstance(data, dict) and data:
            summary = json.loads((out / "summary.json").read_text())
            assert summary["videos"] == len(data) and summary["ok"] + summary["failed"] == len(data)
            assert summary["captions"] == 0


# -------------------------------------------------------------------------------------------- trinity


@FUZZ
@given(CAPTION_FILE | JSON_VALUE)
def test_trinity_fails_exactly_on_malformed_entries(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "caption.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        code, err = run(
            "trinity", str(path), "--reference", str(path), "--no-vendi", "--out", str(Path(d) / "r.json")
        )
        no_traceback(code, err)
        assert (code == 0) == (isinstance(data, dict) and entries_ok(data)), err
        if isinstance(data, dict):  # the report is written either way, over the well-formed entries
            report = json.loads((Path(d) / "r.json").read_text())
            good = sum(isinstance(e, Transcript) for e in read_entries(path))
            assert report["quantity"]["videos"] == good
