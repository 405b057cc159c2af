"""Reading the option letter out of a free-form reply (the ``generate`` scoring method)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sparrow.mcq import LETTERS, option_letter

_LEAD = re.compile(r"^[\s*_\"'`]*[(\[]?\s*([A-Za-z])\s*(?:[.):\],]|\s*$)")
_PHRASE = re.compile(
    r"\b(?:the\s+)?(?:correct\s+|best\s+|final\s+)?(?:answer|option|choice)\s*(?:is|would\s+be|:)?\s*:?\s*"
    r"[(\[]?\s*([A-Za-z])\b(?![.'\-]?\w)",
    re.IGNORECASE,
)
_LONE = re.compile(r"(?<![A-Za-z'\-])([A-Z])(?![A-Za-z'\-])")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _lead_letter(text: str, n: int) -> str | None:
    m = _LEAD.match(text)
    if not m:
        return None
    letter = m.group(1)
    # A lowercase lead letter counts only alone or bracketed ("b", "(b)"), never "a. ..." prose.
    if letter.isupper() or re.fullmatch(r"[\s(\[]*[A-Za-z][\s.)\]]*", text):
        return _valid(letter, n)
    return None


def _phrase_letter(text: str, n: int) -> str | None:
    for m in _PHRASE.finditer(text):
        letter = m.group(1)
        if letter.islower() and re.match(r"\s+[a-z]", text[m.end() :]):
            continue  # "the answer is a bit unclear": an article, not option A
        if _valid(letter, n):
            return _valid(letter, n)
    return None


def _option_text(text: str, options: Sequence[str]) -> str | None:
    hay = f" {_norm(text)} "
    hits = [i for i, o in enumerate(options) if _norm(o) and f" {_norm(o)} " in hay]
    # "dark red" contains "red": keep the longest matches only.
    hits = [
        i
        for i in hits
        if not any(j != i and f" {_norm(options[i])} " in f" {_norm(options[j])} " for j in hits)
    ]
    return option_letter(hits[0]) if len(hits) == 1 else None


def _lone_letter(text: str, n: int) -> str | None:
    lone = set()
    for m in _LONE.finditer(text):
        letter = m.group(1)
        if letter in ("A", "I") and re.match(r"\s[a-z]", text[m.end() : m.end() + 2]):
            continue  # the article "A" / pronoun "I" before a word
        if _valid(letter, n):
            lone.add(letter)
    return lone.pop() if len(lone) == 1 else None


def _valid(letter: str, n: int) -> str | None:
    letter = letter.upper()
    return letter if LETTERS.index(letter) < n else None


def parse_answer(text: str | None, options: Sequence[str] | None) -> str | None:
    """The option letter a free-form reply gives, or None.

    In order: a reply that starts with a letter (``B``, ``(B)``, ``B. red``, ``B: ...``); an explicit
    phrase (``the answer is C``, ``Option (D)``); the text of exactly one option (``red``); one lone
    capital letter (``I'd say C.``). A letter inside a word (``Based on ...``) is never an answer, nor is
    the article ``A`` before a word. With ``options`` None any letter is accepted.
    """
    text = (text or "").strip()
    if not text:
        return None
    n = len(options) if options is not None else len(LETTERS)
    return (
        _lead_letter(text, n)
        or _phrase_letter(text, n)
        or (_option_text(text, options) if options else None)
        or _lone_letter(text, n)
    )
