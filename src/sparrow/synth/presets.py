"""Input presets: raw long-context records -> (context, question, answer) for ``sparrow synth``.

Sparrow's sources do not keep the context and the question apart, and its public code never released
the scripts that split them. Two presets do it here, as pure functions of one record:

- ``longalpaca``: LongAlpaca-12k keeps both in ``instruction`` between fixed markers, and the answer in
  ``output``. Paper records read "Below is a paper. Memorize the paper and answer my question after the
  paper.\\n The paper begins. \\n<paper>\\n Now the paper ends. \\n<question>"; book records read "Below is
  some paragraphs in the book, <title>. Memorize the content and answer my question after the book.\\n
  <paragraphs> \\n Now the material ends. <question>". The context is the text between the begin and
  end markers, the question the text after the end marker; the preamble before the begin marker is an
  instruction to a text model and is dropped. The markers are configurable (:class:`Wording`).
- ``chat``: ShareGPT ``conversations`` (from/value) or OpenAI ``messages`` (role/content); the first
  user turn holds the context, then a separator, then the question; the next assistant turn is the
  answer. A pseudo-video sample is single-turn: system turns and turns after the first exchange are not
  used, and the job counts them (``unused_turns`` in the summary), so none is dropped unseen.

A record that does not fit (markers missing, or found twice so the split is ambiguous) raises
:class:`PresetError` with the reason; the synth job sends it to ``errors.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sparrow.records import RecordError
from sparrow.synth.errors import SynthError
from sparrow.synth.inputs import get_field
from sparrow.synth.units import word_units

SPLIT_AT = ("only", "first", "last")


class PresetError(RecordError):
    """A record does not have the shape its preset expects; the message says what is missing."""


@dataclass(frozen=True)
class Wording:
    """One way a record marks its context: the text right before it and the text right after it."""

    name: str
    begin: str
    end: str


# The wordings of LongAlpaca-12k (Yukang/LongAlpaca-12k): single papers in two phrasings, paper pairs,
# and book excerpts. Two papers stay one context (the marker between them is kept, as in the source).
LONGALPACA_WORDINGS = (
    Wording("paper", "The paper begins.", "Now the paper ends."),
    Wording(
        "paper-material",
        "Memorize the material and answer my question after the paper.",
        "Now the material ends.",
    ),
    Wording("two-papers", "The first paper begins.", "Now the second paper ends."),
    Wording("book", "Memorize the content and answer my question after the book.", "Now the material ends."),
)


@dataclass(frozen=True)
class Split:
    """A record split into Sparrow's three parts; ``how`` names the wording or separator used."""

    context: str
    question: str
    answer: str
    how: str
    unused: dict[str, int] = field(default_factory=dict)  # turns not used, by kind (chat)

    def fields(self) -> dict[str, str]:
        return {"context": self.context, "question": self.question, "answer": self.answer}


def _text(value: Any, key: str) -> str:
    if value is None:
        raise PresetError(f"missing field {key!r}")
    if not isinstance(value, str):
        raise PresetError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _parts(context: str, question: str, what: str) -> tuple[str, str]:
    context, question = context.strip(), question.strip()
    if not context:
        raise PresetError(f"nothing between the markers of {what}: empty context")
    if not question:
        raise PresetError(f"nothing after the end marker of {what}: empty question")
    return context, question


def split_instruction(text: str, wordings: tuple[Wording, ...] = LONGALPACA_WORDINGS) -> tuple[str, str, str]:
    """``(context, question, wording name)`` of a LongAlpaca-style instruction."""
    found = [w for w in wordings if w.begin in text]
    if not found:
        tried = "; ".join(repr(w.begin) for w in wordings)
        raise PresetError(f"no begin marker found (tried {tried})")
    if len(found) > 1:
        names = ", ".join(w.name for w in found)
        raise PresetError(f"ambiguous: begin markers of several wordings found ({names})")
    w = found[0]
    for role, marker in (("begin", w.begin), ("end", w.end)):
        n = text.count(marker)
        if n == 0:
            raise PresetError(f"{w.name} wording: no {role} marker {marker!r}")
        if n > 1:
            raise PresetError(f"ambiguous: {w.name} {role} marker {marker!r} appears {n} times")
    b, e = text.index(w.begin), text.index(w.end)
    if e < b + len(w.begin):
        raise PresetError(f"{w.name} wording: the end marker {w.end!r} comes before the begin marker")
    context, question = _parts(text[b + len(w.begin) : e], text[e + len(w.end) :], f"the {w.name} wording")
    return context, question, w.name


def split_turn(text: str, separator: str, split_at: str = "last") -> tuple[str, str]:
    """``(context, question)`` of a user turn: the text before / after ``separator``. ``split_at``:
    ``only`` (the separator must occur once), ``first`` or ``last`` occurrence."""
    if split_at not in SPLIT_AT:
        raise SynthError(f"split_at must be one of {SPLIT_AT}, got {split_at!r}")
    if not separator:
        raise SynthError("the separator must not be empty")
    n = text.count(separator)
    if n == 0:
        raise PresetError(f"no separator {separator!r} in the first user turn")
    if n > 1 and split_at == "only":
        raise PresetError(f"ambiguous: separator {separator!r} appears {n} times in the first user turn")
    i = text.rindex(separator) if split_at == "last" else text.index(separator)
    return _parts(text[:i], text[i + len(separator) :], f"separator {separator!r}")


_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def chat_turns(record: dict[str, Any], key: str | None = None) -> list[tuple[str, str]]:
    """``(role, text)`` turns of a ShareGPT (from/value) or OpenAI (role/content) record; ``key`` None
    looks for ``conversations`` then ``messages``."""
    keys = [key] if key else ["conversations", "messages"]
    turns = next((v for v in (get_field(record, k) for k in keys) if v is not None), None)
    if not isinstance(turns, list) or not turns:
        raise PresetError(f"no turns: expected a non-empty list in {' or '.join(map(repr, keys))}")
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise PresetError(f"turn {i} is not an object")
        role = t.get("role", t.get("from"))
        text = t.get("content", t.get("value"))
        if role not in _ROLES or not isinstance(text, str):
            raise PresetError(f"turn {i} needs role/from in {sorted(_ROLES)} and string content/value")
        out.append((_ROLES[role], text))
    return out


@dataclass(frozen=True)
class LongAlpacaPreset:
    """``instruction`` holds context and question between markers; ``output`` holds the answer."""

    wordings: tuple[Wording, ...] = LONGALPACA_WORDINGS
    instruction: str = "instruction"
    answer: str = "output"

    name = "longalpaca"
    inputs = ("instruction", "answer")
    max_question_words = 500  # the paper's instruction-length filter for LongAlpaca

    def columns(self) -> list[str]:
        return [self.instruction.split(".")[0], self.answer.split(".")[0]]

    def extract(self, record: dict[str, Any]) -> Split:
        text = _text(get_field(record, self.instruction), self.instruction)
        answer = _text(get_field(record, self.answer), self.answer)
        context, question, how = split_instruction(text, self.wordings)
        return Split(context, question, answer, how)


@dataclass(frozen=True)
class ChatPreset:
    """The first user turn is ``context + separator + question``; the next assistant turn the answer."""

    separator: str = "\n\n"
    split_at: str = "last"
    messages: str | None = None

    name = "chat"
    inputs = ("messages",)
    max_question_words = 0  # no default: chat data has no published limit

    def columns(self) -> list[str]:
        return [self.messages] if self.messages else ["conversations", "messages"]

    def extract(self, record: dict[str, Any]) -> Split:
        turns = chat_turns(record, self.messages)
        user = next((i for i, (role, _) in enumerate(turns) if role == "user"), None)
        if user is None:
            raise PresetError("no user turn")
        answer = next((text for role, text in turns[user + 1 :] if role == "assistant"), None)
        if answer is None:
            raise PresetError("no assistant turn after the first user turn")
        context, question = split_turn(turns[user][1], self.separator, self.split_at)
        answer_at = next(i for i in range(user + 1, len(turns)) if turns[i][0] == "assistant")
        unused: dict[str, int] = {}
        for i, (role, _) in enumerate(turns):
            if i in (user, answer_at):
                continue
            kind = "system" if role == "system" else "after_first_exchange" if i > user else "before_user"
            unused[kind] = unused.get(kind, 0) + 1
        return Split(context, question, answer, f"{self.split_at} {self.separator!r}", unused)


Preset = LongAlpacaPreset | ChatPreset
PRESETS: dict[str, type[LongAlpacaPreset] | type[ChatPreset]] = {
    "longalpaca": LongAlpacaPreset,
    "chat": ChatPreset,
}


def make_preset(
    name: str,
    keys: dict[str, str] | None = None,
    markers: tuple[str, str] | None = None,
    separator: str | None = None,
    split_at: str | None = None,
) -> Preset:
    """A preset by name. ``keys`` renames the record keys it reads (its ``inputs``), ``markers`` replaces
    the longalpaca wordings with one (begin, end) pair, ``separator``/``split_at`` tune ``chat``."""
    if name not in PRESETS:
        raise SynthError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    cls = PRESETS[name]
    bad = sorted(set(keys or {}) - set(cls.inputs))
    if bad:
        raise SynthError(f"preset {name!r} reads {', '.join(cls.inputs)} (and id); not {', '.join(bad)}")
    if name == "longalpaca":
        if separator is not None or split_at is not None:
            raise SynthError("separator / split_at are options of the chat preset")
        preset: Preset = LongAlpacaPreset(**(keys or {}))
        if markers is not None:
            begin, end = markers
            if not begin or not end:
                raise SynthError("both markers must be non-empty")
            preset = replace(preset, wordings=(Wording("custom", begin, end),))
        return preset
    if markers is not None:
        raise SynthError("markers are an option of the longalpaca preset")
    opts = {k: v for k, v in (("separator", separator), ("split_at", split_at)) if v is not None}
    chat = ChatPreset(**opts, **(keys or {}))
    if chat.split_at not in SPLIT_AT or not chat.separator:
        raise SynthError(f"chat preset: split_at in {SPLIT_AT} and a non-empty separator")
    return chat


def looks_like(record: Any) -> str | None:
    """The preset whose shape a raw record has (``longalpaca``: ``instruction`` and ``output`` strings;
    ``chat``: a list of turns in ``conversations`` or ``messages``), or None."""
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("instruction"), str) and isinstance(record.get("output"), str):
        return "longalpaca"
    turns = record.get("conversations", record.get("messages"))
    if isinstance(turns, list) and turns and all(isinstance(t, dict) for t in turns):
        return "chat"
    return None


def question_too_long(question: Any, limit: int) -> str | None:
    """Why a record fails the instruction-length filter (``limit`` words or more), or None. Words are
    counted as segmentation counts them (a CJK character is a word)."""
    if not limit or not isinstance(question, str):
        return None
    n = len(word_units(question))
    if n < limit:
        return None
    return f"question has {n} words; the instruction-length filter keeps fewer than {limit}"


def preset_from_options(
    name: str | None,
    fields: str | None,
    begin: str | None = None,
    end: str | None = None,
    separator: str | None = None,
    split_at: str | None = None,
) -> tuple[Preset | None, str | None]:
    """The preset of the command line, and what of ``--fields`` is left for ``parse_fields`` (with a
    preset, ``--fields`` renames the keys the preset reads, and ``id``)."""
    if name is None:
        if any(x is not None for x in (begin, end, separator, split_at)):
            raise SynthError("--begin-marker, --end-marker, --separator and --split-at need --preset")
        return None, fields
    if (begin is None) != (end is None):
        raise SynthError("give both --begin-marker and --end-marker, or neither")
    keys: dict[str, str] = {}
    rest: list[str] = []
    for part in (fields or "").split(","):
        key, eq, value = (x.strip() for x in part.partition("="))
        if not part.strip():
            continue
        if not eq or not key or not value:
            raise SynthError(f"--fields entry {part!r} must be NAME=KEY")
        if key == "id":
            rest.append(part)
        else:
            keys[key] = value
    markers = (begin, end) if begin is not None and end is not None else None
    return make_preset(name, keys, markers, separator, split_at), ",".join(rest) or None
