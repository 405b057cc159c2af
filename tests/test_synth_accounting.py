"""``sparrow synth`` loses nothing: every input record is a sample or an ``errors.jsonl`` row, an input
that cannot be read to its end fails the run with a message, a run that made nothing exits non-zero
(naming the preset its records look like), and chat turns a preset does not use are counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparrow.cli import main
from sparrow.synth import SynthConfig, synthesize
from sparrow.synth.presets import ChatPreset


def record(rid: str) -> dict:
    return {"id": rid, "context": f"Some context for {rid}.", "question": "What?", "answer": "This."}


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    return int(e.value.code or 0)


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_malformed_array_element_is_one_error_row_and_the_rest_are_read(tmp_path, capsys):
    good = [json.dumps(record(r)) for r in "abde"]
    broken = '{"id": "c", "context": "x", "question": "q?" "answer": "x"}'  # a missing comma
    (tmp_path / "b.json").write_text("[\n" + ",\n".join([*good[:2], broken, *good[2:]]) + "\n]\n")
    assert cli("synth", str(tmp_path / "b.json"), "--out", str(tmp_path / "o"), "-j", "1") == 0
    samples = [s["id"] for s in rows(tmp_path / "o" / "samples.jsonl")]
    errors = rows(tmp_path / "o" / "errors.jsonl")
    assert samples == ["a", "b", "d", "e"]
    assert [(e["line"], e["reason"]) for e in errors] == [
        (3, "invalid JSON in element 3: Expecting ',' delimiter")
    ]


@pytest.mark.parametrize(
    "tail",
    [',\n{"id": "c", "context": "cut off', ",\n", "\n] trailing words"],
    ids=["truncated element", "no closing bracket", "data after the array"],
)
def test_an_array_that_cannot_be_parsed_to_its_end_fails_the_run(tmp_path, capsys, tail):
    (tmp_path / "t.json").write_text("[\n" + ",\n".join(json.dumps(record(r)) for r in "ab") + tail)
    assert cli("synth", str(tmp_path / "t.json"), "--out", str(tmp_path / "o"), "-j", "1") == 2
    err = capsys.readouterr().err
    assert "t.json:" in err and ("cannot be parsed past element" in err or "after the JSON array" in err)
    assert [s["id"] for s in rows(tmp_path / "o" / "samples.jsonl")] == ["a", "b"]
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["samples"] == 2 and len(summary["unread"]) == 1


def test_a_run_where_every_record_fails_exits_non_zero_and_names_the_preset(tmp_path, capsys):
    la = {"instruction": "Below is a paper. The paper begins. Words. Now the paper ends. Why?", "output": "x"}
    (tmp_path / "la.jsonl").write_text((json.dumps(la) + "\n") * 3)
    assert cli("synth", str(tmp_path / "la.jsonl"), "--out", str(tmp_path / "o1"), "-j", "1") == 2
    assert "add --preset longalpaca" in capsys.readouterr().err
    assert len(rows(tmp_path / "o1" / "errors.jsonl")) == 3

    chat = {"messages": [{"role": "user", "content": "Text.\n\nWhy?"}, {"role": "assistant", "content": "x"}]}
    (tmp_path / "chat.json").write_text(json.dumps([chat, chat]))
    assert cli("synth", str(tmp_path / "chat.json"), "--out", str(tmp_path / "o2"), "-j", "1") == 2
    assert "add --preset chat" in capsys.readouterr().err
    # the hinted preset works
    code = cli(
        "synth", str(tmp_path / "chat.json"), "--preset", "chat", "--out", str(tmp_path / "o3"), "-j", "1"
    )
    assert code == 0 and len(rows(tmp_path / "o3" / "samples.jsonl")) == 2

    (tmp_path / "other.jsonl").write_text('{"text": "no fields we know"}\n')
    assert cli("synth", str(tmp_path / "other.jsonl"), "--out", str(tmp_path / "o4"), "-j", "1") == 2
    err = capsys.readouterr().err
    assert "no sample was made: all 1 records failed" in err and "--preset" not in err


def test_chat_turns_the_preset_does_not_use_are_counted(tmp_path):
    turns = [
        {"from": "system", "value": "You are helpful."},
        {"from": "human", "value": "A long story.\n\nWho is in it?"},
        {"from": "gpt", "value": "A fox."},
        {"from": "human", "value": "And then?"},
        {"from": "gpt", "value": "It ran."},
    ]
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "c1", "conversations": turns}) + "\n")
    s = synthesize([tmp_path / "c.jsonl"], tmp_path / "o", SynthConfig(preset=ChatPreset()), workers=1)
    assert s.samples == 1 and s.unused_turns == {"system": 1, "after_first_exchange": 2}
    saved = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert saved["unused_turns"] == {"system": 1, "after_first_exchange": 2}
