"""Text layout that never clips: greedy wrapping to the frame width, exact ink boxes for every word,
and ``fits`` saying whether all ink lies inside the margins (the caller puts the rest on another frame)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sparrow.render.config import RenderConfig
from sparrow.render.glyphs import Piece
from sparrow.render.scripts import Atom, atoms, is_plain, paragraphs, plain_atoms, rtl_paragraph
from sparrow.render.typesetter import Typesetter

Box = tuple[int, int, int, int]
Row = tuple[list[tuple[Atom, int, Piece]], bool, int]  # (atoms at pen x, right-to-left, start offset)


@dataclass
class Word:
    """One drawn unit (a word, a CJK character, or a piece of a broken word): its characters are
    ``source[start:end]`` of the laid-out text (minus invisible ones); ``box`` is its ink on the canvas
    as (left, top, right, bottom), right/bottom exclusive, or None when it has no ink."""

    text: str
    x: int
    box: Box | None
    start: int = 0
    end: int = 0
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # coverage of ``box``


@dataclass
class Line:
    words: list[Word]
    baseline: int
    start: int  # offset in the laid-out text of the line's first character
    rtl: bool = False
    box: Box | None = None  # union of the words' ink boxes

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class Layout:
    """Lines with absolute positions. ``fits`` says whether every line's ink is inside the margins."""

    lines: list[Line]
    width: int
    height: int
    margin: int
    fits: bool
    max_lines: int  # how many lines of the primary font the frame holds
    shift: int = 0  # pixels all lines were moved down because a glyph reached above the top margin

    @property
    def box(self) -> Box | None:
        return union([ln.box for ln in self.lines])

    @property
    def words(self) -> list[Word]:
        return [w for ln in self.lines for w in ln.words]

    def inside(self, box: Box | None) -> bool:
        """Whether ``box`` (None: no ink) lies inside the margins."""
        m = self.margin
        return box is None or (
            box[0] >= m and box[1] >= m and box[2] <= self.width - m and box[3] <= self.height - m
        )

    def prefix(self, end: int) -> Layout | None:
        """The layout of the laid-out text cut at offset ``end`` (a word end), derived from this one:
        greedy wrapping is prefix-stable, so the words before ``end`` keep their places. None when lines
        were shifted or a line is right-to-left (the shorter text may be placed differently)."""
        if self.shift or any(ln.rtl for ln in self.lines):
            return None
        lines: list[Line] = []
        for ln in self.lines:
            if ln.start >= end and lines:
                break
            words = [w for w in ln.words if w.end <= end]
            if ln.words and not words:
                break
            lines.append(Line(words, ln.baseline, ln.start, ln.rtl, union([w.box for w in words])))
        while lines and not lines[-1].words:
            lines.pop()
        lay = Layout(lines, self.width, self.height, self.margin, False, self.max_lines)
        lay.fits = lay.inside(lay.box)
        return lay

    def fitting_prefix(self) -> int | None:
        """Offset in the laid-out text where the first line that does not fit starts (None if all fit):
        text before it fits on this frame as laid out here."""
        if self.fits:
            return None
        limit = self.height - self.margin
        for ln in self.lines:
            bottom = ln.box[3] if ln.box is not None else ln.baseline
            if bottom > limit:
                return ln.start
        return self.lines[-1].start if self.lines else 0


def union(boxes: list[Box | None]) -> Box | None:
    """The smallest box holding all given boxes (None entries have no ink)."""
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return (
        min(b[0] for b in real),
        min(b[1] for b in real),
        max(b[2] for b in real),
        max(b[3] for b in real),
    )


def _atoms(line: str, base: int, plain: dict[str, bool]) -> list[Atom]:
    # fast path for the common case (``plain`` memoises is_plain per character)
    if all(plain[c] if c in plain else plain.setdefault(c, is_plain(c)) for c in set(line)):
        return plain_atoms(line, base)
    return atoms(line, base)


def _wrap(ts: Typesetter, queue: list[Atom], rtl: bool, text: str, avail: int, space_adv: int) -> list[Row]:
    """Rows of one paragraph's atoms, greedily filled; a word wider than a line is broken into pieces."""
    rows: list[Row] = []
    cur: list[tuple[Atom, int, Piece]] = []
    pen, ink_l, ink_r = 0, 0, 0
    k = 0
    while k < len(queue):
        atom = queue[k]
        piece = ts.word(atom.text)
        x = pen + space_adv if atom.space_before and cur else pen
        new_l, new_r = ink_l, ink_r
        if piece.mask is not None:  # (plain comparisons: this loop runs for every word)
            if x + piece.left < new_l:
                new_l = x + piece.left
            if x + piece.right > new_r:
                new_r = x + piece.right
        if new_r - (new_l if new_l < 0 else 0) <= avail:
            cur.append((atom, x, piece))
            pen, ink_l, ink_r = x + int(piece.adv), new_l, new_r
            k += 1
            continue
        if cur:  # the word goes to the next line
            rows.append((cur, rtl, cur[0][0].start))
            cur, pen, ink_l, ink_r = [], 0, 0, 0
            continue
        # a single word wider than the line: break it into pieces that each fit a line
        queue = queue[:k] + ts.break_word(atom, text, avail) + queue[k + 1 :]
        first = queue[k]
        rows.append(([(first, 0, ts.word(first.text))], rtl, first.start))
        k += 1
    if cur:
        rows.append((cur, rtl, cur[0][0].start))
    return rows


def wrap(ts: Typesetter, text: str, avail: int, plain: dict[str, bool]) -> list[Row]:
    """Rows of the whole text: paragraphs wrapped to ``avail`` pixels, a blank line between them where
    the text has one. ``plain`` memoises which characters take the fast path of word splitting."""
    space_adv = ts.fonts.space_width()
    rows: list[Row] = []
    for base, para in paragraphs(text):
        queue = _atoms(para, base, plain)
        if queue:
            rows += _wrap(ts, queue, rtl_paragraph(para), text, avail, space_adv)
        else:
            rows.append(([], False, base))
    return rows


def _line(
    items: list[tuple[Atom, int, Piece]], rtl: bool, start: int, baseline: int, cfg: RenderConfig
) -> Line:
    """Place one row's words on the canvas: left-aligned, or right-aligned in visual order when rtl."""
    if rtl:
        # visual order: the first word goes right; the whole line is right-aligned
        width = max((x + int(p.adv) for _, x, p in items), default=0)
        items = [(a, width - x - int(p.adv), p) for a, x, p in items]
        right = max((x + p.right for _, x, p in items if p.mask is not None), default=0)
        offset = cfg.width - cfg.margin - right
    else:
        left = min((x + p.left for _, x, p in items if p.mask is not None), default=0)
        offset = cfg.margin - min(left, 0)
    words = []
    x0 = y0 = 1 << 30
    x1 = y1 = -(1 << 30)  # the line's ink box, accumulated as words are placed
    for a, x, p in items:
        box = None
        if p.mask is not None:
            box = (offset + x + p.left, baseline + p.top, offset + x + p.right, baseline + p.bottom)
            x0, y0 = (box[0] if box[0] < x0 else x0), (box[1] if box[1] < y0 else y0)
            x1, y1 = (box[2] if box[2] > x1 else x1), (box[3] if box[3] > y1 else y1)
        words.append(Word(a.text, offset + x, box, a.start, a.end, p.mask))
    return Line(words, baseline, start, rtl, (x0, y0, x1, y1) if x1 > x0 else None)


def _shift_down(lines: list[Line], dy: int) -> None:
    for ln in lines:
        ln.baseline += dy
        for w in ln.words:
            if w.box is not None:
                w.box = (w.box[0], w.box[1] + dy, w.box[2], w.box[3] + dy)
        if ln.box is not None:
            ln.box = (ln.box[0], ln.box[1] + dy, ln.box[2], ln.box[3] + dy)


def place(rows: list[Row], cfg: RenderConfig, ascent: int, line_height: int, max_lines: int) -> Layout:
    """Lines at their baselines, moved down as a whole if some glyph reaches above the top margin (tall
    accents, stacked marks); ``fits`` from the union of all ink."""
    lines = [
        _line(items, rtl, start, cfg.margin + ascent + i * line_height, cfg)
        for i, (items, rtl, start) in enumerate(rows)
    ]
    top = min((ln.box[1] for ln in lines if ln.box is not None), default=cfg.margin)
    dy = max(0, cfg.margin - top)
    if dy:
        _shift_down(lines, dy)
    lay = Layout(lines, cfg.width, cfg.height, cfg.margin, False, max_lines, dy)
    lay.fits = lay.inside(lay.box)
    return lay
