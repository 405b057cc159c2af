"""A context's units: word spans (each CJK character a word of its own) or token spans, and the text
tokens a plain text costs."""

from __future__ import annotations

import math
import re

from sparrow.render import CJK_RANGES
from sparrow.synth.tokenizers import Tokenizer

_CJK_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in CJK_RANGES)
_WORD_RE = re.compile(f"(?!\\s)[{_CJK_CLASS}]|[^\\s{_CJK_CLASS}]+")


def word_units(text: str) -> list[tuple[int, int]]:
    """Spans of words: runs of non-space characters, with each CJK character a word of its own."""
    return [m.span() for m in _WORD_RE.finditer(text)]


def token_units(text: str, tokenizer: Tokenizer) -> list[tuple[int, int]]:
    """Spans of tokens (whitespace trimmed; tokens sharing characters merged so spans never overlap)."""
    spans: list[tuple[int, int]] = []
    for s, e in tokenizer.spans(text):
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s >= e:
            continue
        if spans and s < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((s, e))
    return spans


def count_text_tokens(text: str, tokenizer: Tokenizer | None = None) -> int:
    """Tokens of plain text: exact with a tokenizer, else an estimate of 1.3 tokens per word
    (each CJK character counts as a word)."""
    if tokenizer is not None:
        return tokenizer.count(text)
    return math.ceil(1.3 * len(word_units(text)))
