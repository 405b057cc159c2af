"""Property-based tests of what ``sparrow synth`` reads (hypothesis): JSON lines, JSON arrays (whole,
truncated or with a character deleted), Parquet, and the longalpaca / chat presets.

For any input: no traceback reaches the user (the command ends with exit 0 or a one-line error, exit 2;
exit 1 would be an unexpected exception), every record is a sample or an ``errors.jsonl`` row, and the
command exits non-zero exactly when no sample was made or an input could not be read to its end."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparrow.cli import main

FUZZ = settings(
    max_examples=25,
    deadline=20_000,  # ms; generous: the machine running the suite may be loaded
    derandomize=True,  # the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Short texts over a few scripts, with the characters JSON and the splitter care about.
TEXT = st.lists(
    st.sampled_from([*'ab c.\n\t"\\{}[],:/é中文', "<video>", "<image>", "\u2028", "\n\n"]), max_size=12
).map("".join)
JSON_LEAF = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | TEXT
JSON_VALUE = st.recursive(
    JSON_LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=6
)
GOOD = st.fixed_dictionaries(
    {"context": TEXT.filter(str.strip), "question": TEXT.filter(str.strip), "answer": TEXT}
)
# A record: well-formed, with a field of the wrong type or missing, or any JSON value at all.
RECORD = (
    GOOD | st.dictionaries(st.sampled_from(["context", "question", "answer", "id"]), JSON_VALUE) | JSON_VALUE
)


def run_synth(path: Path, out: Path, *extra: str) -> tuple[int, str, dict | None, list[dict], list[dict]]:
    """``sparrow synth`` in-process: exit code, stderr, summary, samples and error rows."""
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        pytest.raises(SystemExit) as e,
    ):
        main(["synth", str(path), "--out", str(out), "-j", "1", *extra])
    code = int(e.value.code or 0)

    def rows(name: str) -> list[dict]:
        p = out / name
        return [json.loads(x) for x in p.read_text().split("\n") if x] if p.exists() else []

    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    return code, err.getvalue(), summary, rows("samples.jsonl"), rows("errors.jsonl")


def check(code: int, err: str, summary: dict | None, records: int | None) -> None:
    """The properties every run must have; ``records``: how many the input holds, when known."""
    assert code in (0, 2), err  # 1: an unexpected exception reached the top level
    assert "Traceback" not in err
    assert summary is not None, err
    made = summary["samples"] > 0 and not summary["unread"]
    assert (code == 0) == made, (code, summary, err)
    if records is not None and not summary["unread"]:
        assert summary["samples"] + summary["errors"] == records


@FUZZ
@given(
    st.lists(
        RECORD | st.sampled_from(["{not json", "", "   ", "[1, 2]"]).map(lambda s: ("raw", s)), max_size=6
    )
)
def test_jsonl_records_are_all_accounted_for(items):
    lines = [x[1] if isinstance(x, tuple) and x and x[0] == "raw" else json.dumps(x) for x in items]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        code, err, summary, samples, errors = run_synth(path, Path(d) / "out")
        check(code, err, summary, sum(bool(line.strip()) for line in lines))
        assert len(samples) == summary["samples"] and len(errors) == summary["errors"]


@FUZZ
@given(
    st.lists(RECORD, max_size=6), st.sampled_from(["whole", "truncated", "deleted"]), st.integers(0, 10**6)
)
def test_json_arrays_whole_truncated_or_damaged(records, damage, where):
    text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n"
    if damage == "truncated":
        text = text[: where % len(text)]
    elif damage == "deleted":
        i = where % len(text)
        text = text[:i] + text[i + 1 :]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.json"
        path.write_text(text, encoding="utf-8")
        code, err, summary, samples, errors = run_synth(path, Path(d) / "out")
        if not text.lstrip().startswith("["):  # not an array any more: read as JSON lines
            assert code in (0, 2) and "Traceback" not in err
            return
        check(code, err, summary, len(records) if damage == "whole" else None)
        if damage == "truncated" and not text.rstrip().endswith("]"):
            assert code == 2 and summary["unread"]


@FUZZ
@given(st.lists(st.tuples(TEXT | st.none(), TEXT | st.none(), TEXT | st.none()), min_size=1, max_size=6))
def test_parquet_rows_are_all_accounted_for(rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {name: [r[i] for r in rows] for i, name in enumerate(("context", "question", "answer"))}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.parquet"
        pq.write_table(pa.table({k: pa.array(v, type=pa.string()) for k, v in cols.items()}), path)
        code, err, summary, _, _ = run_synth(path, Path(d) / "out")
        check(code, err, summary, len(rows))


ROLE = st.sampled_from(["system", "user", "human", "assistant", "gpt", "tool", None])
TURN = st.fixed_dictionaries({"role": ROLE, "content": TEXT | st.none()}) | st.fixed_dictionaries(
    {"from": ROLE, "value": TEXT}
)
CHAT = st.fixed_dictionaries({"messages": st.lists(TURN, max_size=5)}) | st.fixed_dictionaries(
    {"conversations": st.lists(TURN, max_size=5) | JSON_VALUE}
)
MARKERS = ["The paper begins.", "Now the paper ends.", "Below is a paper.", "Now the material ends."]
LONGALPACA = st.fixed_dictionaries(
    {
        "instruction": st.lists(TEXT | st.sampled_from(MARKERS), max_size=5).map(" ".join) | JSON_VALUE,
        "output": TEXT | JSON_VALUE,
    }
)


@FUZZ
@given(st.sampled_from(["chat", "longalpaca"]), st.data())
def test_preset_records_are_all_accounted_for(preset, data):
    records = data.draw(st.lists(CHAT if preset == "chat" else LONGALPACA, min_size=1, max_size=5))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        code, err, summary, _, _ = run_synth(path, Path(d) / "out", "--preset", preset)
        check(code, err, summary, len(records))
