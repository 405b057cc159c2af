"""Script classes and line-break rules: which characters wrap on their own (CJK), which need shaping
(Arabic, Hebrew, Indic, ...), which are invisible, and how a line of text splits into the units the
layout wraps (``atoms``)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3100, 0x312F),  # bopomofo
    (0x31C0, 0x31FF),  # strokes, katakana extension
    (0x3200, 0x33FF),  # enclosed, compatibility
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFE30, 0xFE4F),  # compatibility forms
    (0xFF00, 0xFFEF),  # half/full-width forms
    (0x20000, 0x3FFFF),  # extensions B+
)
# Scripts whose glyphs change shape with their neighbours or run right to left: shaped with Raqm.
COMPLEX_RANGES = (
    (0x0590, 0x08FF),  # Hebrew, Arabic, Syriac, Thaana, NKo, Samaritan, Mandaic
    (0x0900, 0x0DFF),  # Indic scripts
    (0x0E00, 0x0FFF),  # Thai, Lao, Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x18AF),  # Khmer, Mongolian
    (0xFB1D, 0xFDFF),  # Hebrew and Arabic presentation forms
    (0xFE70, 0xFEFF),  # Arabic presentation forms B
)
# No line may start with these (closing punctuation sticks to the character before it).
NO_BREAK_BEFORE = set(
    "、。，．：；！？）］｝〕〉》」』】〙〗・ー…‥ゝゞヽヾ々ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ"
)
# No line may end with these (opening brackets stick to the character after them).
NO_BREAK_AFTER = set("（［｛〔〈《「『【〘〖")
_WORD_RE = re.compile(r"\S+")
# Line separators that str.splitlines() breaks on, besides \r and \n.
_LINE_ENDS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _in(ranges: tuple[tuple[int, int], ...], cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def is_cjk(ch: str) -> bool:
    """Characters of scripts written without spaces: each one is a word of its own for wrapping."""
    cp = ord(ch)
    return cp >= 0x2E80 and _in(CJK_RANGES, cp)


def is_complex(ch: str) -> bool:
    """Characters that must be shaped with their neighbours (or run right to left)."""
    cp = ord(ch)
    return (0x0590 <= cp <= 0x18AF or 0xFB1D <= cp <= 0xFEFF) and _in(COMPLEX_RANGES, cp)


def is_ignorable(ch: str) -> bool:
    """Invisible characters that are not drawn (format/control characters, variation selectors)."""
    if ch in "\n\t":
        return False
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return True
    return unicodedata.category(ch) in ("Cc", "Cf")


def is_plain(ch: str) -> bool:
    """Characters for which words are simply the runs between spaces."""
    return not is_cjk(ch) and not is_ignorable(ch)


def rtl_paragraph(text: str) -> bool:
    """Whether the paragraph's first strong character runs right to left."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


@dataclass
class Atom:
    """A unit the layout never breaks unless it is wider than a line: a word, or one CJK character."""

    text: str  # visible characters only
    space_before: bool
    start: int  # offsets of the atom in the laid-out text
    end: int


def paragraphs(text: str) -> list[tuple[int, str]]:
    """Logical lines with their offsets; a run of blank lines becomes one blank line."""
    out: list[tuple[int, str]] = []
    blank_at = -1
    offset = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip(_LINE_ENDS)
        if body.strip() and any(not is_ignorable(c) for c in body if not c.isspace()):
            if blank_at >= 0 and out:
                out.append((blank_at, ""))
            out.append((offset, body))
            blank_at = -1
        elif blank_at < 0:
            blank_at = offset
        offset += len(raw)
    return out


def plain_atoms(line: str, base: int) -> list[Atom]:
    """Atoms of a line of plain characters: the runs of non-space characters. ``base`` is the line's
    offset in the laid-out text."""
    atoms = [Atom(m.group(), True, base + m.start(), base + m.end()) for m in _WORD_RE.finditer(line)]
    if atoms:
        atoms[0].space_before = False
    return atoms


class _AtomBuilder:
    """Collects atoms of one line, character by character (``atoms``'s state)."""

    def __init__(self, base: int):
        self.base = base
        self.atoms: list[Atom] = []
        self.buf: list[str] = []
        self.start = -1
        self.space = False
        self.glue = False  # the last atom ended with an opening bracket: the next character joins it

    def flush(self, end: int) -> None:
        if self.buf:
            self.atoms.append(Atom("".join(self.buf), self.space, self.base + self.start, self.base + end))
            self.buf.clear()
            self.space = False
        self.start = -1

    def add(self, k: int, ch: str) -> None:
        if self.start < 0:
            self.start = k
        self.buf.append(ch)

    def cjk(self, k: int, ch: str) -> None:
        if ch in NO_BREAK_BEFORE and not self.space and (self.buf or self.atoms):
            if self.buf:
                self.buf.append(ch)
            else:
                self.atoms[-1].text += ch
                self.atoms[-1].end = self.base + k + 1
            return
        if not self.glue:
            self.flush(k)
        self.add(k, ch)
        self.glue = ch in NO_BREAK_AFTER
        if not self.glue:
            self.flush(k + 1)


def atoms(line: str, base: int) -> list[Atom]:
    """Words, with every CJK character a word of its own (no spaces are written between them). Closing
    CJK punctuation sticks to the character before it, opening punctuation to the one after; invisible
    characters are dropped. ``base`` is the line's offset in the laid-out text."""
    b = _AtomBuilder(base)
    for k, ch in enumerate(line):
        if ch.isspace():
            b.flush(k)
            b.space = bool(b.atoms) or b.space
            b.glue = False
        elif is_ignorable(ch):
            continue
        elif is_cjk(ch):
            b.cjk(k, ch)
        else:
            if b.buf and is_cjk(b.buf[-1]) and not b.glue:
                b.flush(k)
            b.glue = False
            b.add(k, ch)
    b.flush(len(line))
    if b.atoms:
        b.atoms[0].space_before = False  # indentation at the start of a line is not kept
    return b.atoms
