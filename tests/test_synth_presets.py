"""Input presets of sparrow synth: LongAlpaca-style and chat-style records split into context, question
and answer word for word; records that do not fit fail with the reason."""

from __future__ import annotations

import pytest

from sparrow.synth.errors import SynthError
from sparrow.synth.presets import (
    ChatPreset,
    LongAlpacaPreset,
    PresetError,
    Wording,
    make_preset,
    split_instruction,
    split_turn,
)

PAPER = (
    "Title: Sparse Frames\n\nAbstract. We render text as frames; each frame holds about 115 tokens.\n"
    "1 Introduction\nVideo data lacks diversity (9 templates). Our method: long text -> images."
)
QUESTION = "What problem does the paper address, and how?"
BOOK = 'Chapter 1\n\n"It is a truth universally acknowledged," said Mr. Bennet.\n\nShe smiled.'


def paper_record(paper: str = PAPER, question: str = QUESTION) -> dict:
    instruction = (
        "Below is a paper. Memorize the paper and answer my question after the paper.\n The paper begins. \n"
        + paper
        + "\n Now the paper ends. \n"
        + question
    )
    return {"instruction": instruction, "output": "It renders text as video.", "input": "", "file": "1.pdf"}


def book_record(
    title: str = "Pride and Prejudice", material: str = BOOK, question: str = "Who speaks?"
) -> dict:
    instruction = (
        f"Below is some paragraphs in the book, {title}. Memorize the content and answer my question after "
        f"the book.\n {material} \n Now the material ends. {question}"
    )
    return {"instruction": instruction, "output": "Mr. Bennet.", "input": "", "file": ""}


def test_longalpaca_paper_wording_word_for_word():
    split = LongAlpacaPreset().extract(paper_record())
    assert split.context == PAPER and split.question == QUESTION
    assert split.answer == "It renders text as video." and split.how == "paper"
    assert "Memorize" not in split.context and "begins" not in split.context


def test_longalpaca_book_wording_word_for_word():
    split = LongAlpacaPreset().extract(book_record(title="Mr. Darcy. A Novel"))
    assert (split.context, split.question, split.answer, split.how) == (
        BOOK,
        "Who speaks?",
        "Mr. Bennet.",
        "book",
    )


def test_longalpaca_other_wordings():
    text = (
        "Below is a paper. Memorize the material and answer my question after the paper.\n P body. \n "
        "Now the material ends. Summarize it."
    )
    assert split_instruction(text) == ("P body.", "Summarize it.", "paper-material")
    two = (
        "There are two papers. Memorize them and answer my question after the paper.\n The first paper "
        "begins. \n A. Now the first paper ends. The second paper begins. B. Now the second paper ends. Compare."
    )
    context, question, how = split_instruction(two)
    assert context == "A. Now the first paper ends. The second paper begins. B."
    assert (question, how) == ("Compare.", "two-papers")


def test_longalpaca_record_without_markers_is_an_error():
    with pytest.raises(PresetError, match="no begin marker found"):
        LongAlpacaPreset().extract({"instruction": "Summarize this text: hello.", "output": "Hi."})
    cut = paper_record()["instruction"].split("\n Now the paper ends.")[0]
    with pytest.raises(PresetError, match="no end marker 'Now the paper ends.'"):
        split_instruction(cut)
    with pytest.raises(PresetError, match="missing field 'output'"):
        LongAlpacaPreset().extract({"instruction": paper_record()["instruction"]})


def test_longalpaca_markers_twice_are_ambiguous():
    twice = paper_record(paper=PAPER + "\n Now the paper ends. \nAppendix. The paper begins. again")
    with pytest.raises(
        PresetError, match=r"ambiguous: paper begin marker 'The paper begins\.' appears 2 times"
    ):
        LongAlpacaPreset().extract(twice)
    end_twice = paper_record(question="Q? Now the paper ends. Q2?")
    with pytest.raises(PresetError, match="ambiguous: paper end marker"):
        LongAlpacaPreset().extract(end_twice)
    mixed = paper_record(paper="Memorize the content and answer my question after the book. Text")
    with pytest.raises(PresetError, match=r"several wordings found \(paper, book\)"):
        LongAlpacaPreset().extract(mixed)


def test_longalpaca_order_and_empty_parts():
    with pytest.raises(PresetError, match="comes before the begin marker"):
        split_instruction("Now the paper ends. x The paper begins. y")
    with pytest.raises(PresetError, match="empty question"):
        split_instruction(paper_record(question="  ")["instruction"])
    with pytest.raises(PresetError, match="empty context"):
        split_instruction("The paper begins. \n \n Now the paper ends. Q")


def test_longalpaca_custom_markers_and_keys():
    preset = make_preset("longalpaca", keys={"instruction": "prompt"}, markers=("<doc>", "</doc>"))
    split = preset.extract({"prompt": "Read:<doc> Body text. </doc> Why?", "output": "Because."})
    assert (split.context, split.question, split.answer, split.how) == (
        "Body text.",
        "Why?",
        "Because.",
        "custom",
    )
    assert split_instruction("a [[ x ]] b", (Wording("w", "[[", "]]"),)) == ("x", "b", "w")


def test_chat_sharegpt_and_openai_records():
    sharegpt = {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": f"{PAPER}\n\n{QUESTION}"},
            {"from": "gpt", "value": "Rendering."},
            {"from": "human", "value": "And then?"},
            {"from": "gpt", "value": "Training."},
        ]
    }
    split = ChatPreset().extract(sharegpt)
    assert (split.context, split.question, split.answer) == (PAPER, QUESTION, "Rendering.")
    openai = {"messages": [{"role": "user", "content": "CTX---Q?"}, {"role": "assistant", "content": "A"}]}
    split = make_preset("chat", separator="---", split_at="only").extract(openai)
    assert (split.context, split.question, split.answer) == ("CTX", "Q?", "A")
    assert split_turn("a|b|c", "|", "first") == ("a", "b|c")
    assert split_turn("a|b|c", "|", "last") == ("a|b", "c")


def test_chat_records_that_do_not_fit():
    def rec(text: str, answer: bool = True) -> dict:
        turns = [{"role": "user", "content": text}] + (
            [{"role": "assistant", "content": "A"}] if answer else []
        )
        return {"messages": turns}

    with pytest.raises(PresetError, match="no separator '---'"):
        ChatPreset(separator="---").extract(rec("no separator here"))
    with pytest.raises(PresetError, match="ambiguous: separator '---' appears 2 times"):
        ChatPreset(separator="---", split_at="only").extract(rec("a---b---c"))
    with pytest.raises(PresetError, match="no assistant turn"):
        ChatPreset().extract(rec("a\n\nb", answer=False))
    with pytest.raises(PresetError, match="no turns"):
        ChatPreset().extract({"text": "a"})
    with pytest.raises(PresetError, match="turn 0 needs role"):
        ChatPreset().extract({"messages": [{"role": "robot", "content": "x"}]})


def test_make_preset_rejects_foreign_options():
    for kwargs, match in [
        ({"name": "alpaca"}, "unknown preset"),
        ({"name": "longalpaca", "separator": "\n"}, "chat preset"),
        ({"name": "chat", "markers": ("a", "b")}, "longalpaca preset"),
        ({"name": "chat", "keys": {"answer": "output"}}, "reads messages"),
        ({"name": "longalpaca", "markers": ("", "b")}, "non-empty"),
        ({"name": "chat", "split_at": "middle"}, "split_at"),
    ]:
        with pytest.raises(SynthError, match=match):
            make_preset(**kwargs)


def _words(n: int, seed: str = "w") -> str:
    return " ".join(f"{seed}{i}" for i in range(n))


def longalpaca_file(path) -> list[dict]:
    """A LongAlpaca-12k-shaped JSON array: paper and book wording, one record without markers, one with
    them twice, one over the instruction-length filter, one over the frame limit."""
    import json

    rows = [
        paper_record(),
        book_record(),
        {"instruction": "Summarize: " + PAPER, "output": "x", "input": "", "file": ""},
        paper_record(question="Why? Now the paper ends. Really?"),
        paper_record(question=_words(500, "q") + "?"),
        paper_record(paper=_words(400, "p")),
        paper_record(question=_words(499, "q") + "?"),
    ]
    path.write_text(json.dumps(rows, indent=1))
    return rows


def test_readme_longalpaca_command_end_to_end(tmp_path):
    import json

    from typer.testing import CliRunner

    from sparrow.cli import app
    from sparrow.records import load_samples

    src = tmp_path / "longalpaca.json"
    longalpaca_file(src)
    out = tmp_path / "synth"
    args = ["synth", str(src), "--preset", "longalpaca", "--out", str(out), "--workers", "1"]
    res = CliRunner().invoke(app, [*args, "--max-frames", "3"])
    assert res.exit_code == 0, res.output
    samples, bad = load_samples(out / "samples.jsonl")
    assert not bad and [s.id for s in samples] == [
        "longalpaca-000001",
        "longalpaca-000002",
        "longalpaca-000007",
    ]
    paper, book, long_q = samples
    assert paper.messages[0]["content"] == "<video>\n" + QUESTION
    assert paper.messages[1]["content"] == "It renders text as video."
    assert (
        book.messages[0]["content"] == "<video>\nWho speaks?" and book.messages[1]["content"] == "Mr. Bennet."
    )
    assert long_q.messages[0]["content"] == "<video>\n" + _words(499, "q") + "?"
    assert paper.meta["context_chars"] == len(PAPER) and book.meta["context_chars"] == len(BOOK)
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    reasons = {e["line"]: e["reason"] for e in errors}
    assert sorted(reasons) == [3, 4, 5, 6]
    assert reasons[3].startswith("longalpaca preset: no begin marker found")
    assert reasons[4].startswith("longalpaca preset: ambiguous: paper end marker")
    assert reasons[5] == "question has 500 words; the instruction-length filter keeps fewer than 500"
    assert reasons[6].startswith("over the limit:") and "max frames 3" in reasons[6]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["records"], summary["samples"], summary["errors"]) == (7, 3, 4)
    assert summary["dropped"] == {"preset": 2, "question_words": 1}
    # the filters are options: 0 turns the instruction-length filter off
    res = CliRunner().invoke(
        app,
        [
            *args[:-4],
            "--out",
            str(tmp_path / "b"),
            "--workers",
            "1",
            "--max-question-words",
            "0",
            "--limit",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["dropped"] == {"preset": 2}


def test_the_old_fields_command_names_what_is_missing(tmp_path):
    import json

    from sparrow.synth import SynthConfig, parse_fields, synthesize

    src = tmp_path / "longalpaca.json"
    longalpaca_file(src)
    fields = parse_fields("context=instruction,question=question,answer=output")
    s = synthesize([src], tmp_path / "o", SynthConfig(fields=fields), workers=1)
    assert s.samples == 0 and s.errors == 7
    first = json.loads((tmp_path / "o" / "errors.jsonl").read_text().splitlines()[0])
    assert "missing field 'question'" in first["reason"]


def test_chat_preset_with_fields_and_markers_options(tmp_path):
    import json

    from sparrow.synth import SynthConfig, parse_fields, synthesize
    from sparrow.synth.presets import preset_from_options

    rows = [
        {
            "uid": "a",
            "chat": [
                {"from": "human", "value": "Some context here.\n###\nWhat?"},
                {"from": "gpt", "value": "That."},
            ],
        },
        {
            "uid": "b",
            "chat": [{"from": "human", "value": "No separator. What?"}, {"from": "gpt", "value": "x"}],
        },
    ]
    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    preset, rest = preset_from_options("chat", "messages=chat,id=uid", separator="\n###\n", split_at="only")
    assert rest == "id=uid"
    cfg = SynthConfig(preset=preset, fields=parse_fields(rest), max_question_words=30)
    s = synthesize([src], tmp_path / "o", cfg, workers=1)
    assert (s.samples, s.errors, s.dropped) == (1, 1, {"preset": 1})
    err = json.loads((tmp_path / "o" / "errors.jsonl").read_text())
    assert (
        err["id"] == "b" and err["reason"] == "chat preset: no separator '\\n###\\n' in the first user turn"
    )
    with pytest.raises(SynthError, match="need --preset"):
        preset_from_options(None, None, separator="x")
    with pytest.raises(SynthError, match="both --begin-marker and --end-marker"):
        preset_from_options("longalpaca", None, begin="a")
