"""Measuring and rasterising words from cached glyphs: font runs, shaped scripts, missing-glyph
placeholders, and breaking a word wider than a line into pieces that fit.

Glyph and whole-word bitmaps are rendered once per renderer and reused, so measuring a line is a sum of
cached advances and drawing it a few numpy blits."""

from __future__ import annotations

import unicodedata
from collections import OrderedDict

from sparrow.render.config import RenderError
from sparrow.render.fonts import FontChain
from sparrow.render.glyphs import Piece, compose, placeholder, scaled_bitmap, tight
from sparrow.render.scripts import Atom, is_complex, is_ignorable

# Font index of a run of characters no font has (drawn as placeholders); -1 means "no run yet".
MISSING = None
Run = tuple[int | None, str, bool]  # (font index or MISSING, characters, needs shaping)


class Typesetter:
    """Words of one font chain at one size, with bounded caches."""

    WORD_CACHE = 50_000
    GLYPH_CACHE = 200_000

    def __init__(self, fonts: FontChain, replace_missing: bool):
        self.fonts = fonts
        self.replace_missing = replace_missing
        self.ascent = fonts.metrics()[0]
        self._breaks: dict[str, list[int]] = {}
        self._glyphs: dict[tuple[int | None, str], Piece] = {}
        self._words: OrderedDict[str, Piece] = OrderedDict()

    def _shaped(self, fi: int, run: str) -> Piece:
        return tight(self.fonts.font(fi, complex_script=True), run)

    def glyph(self, fi: int | None, ch: str) -> Piece:
        """The cached piece of one character drawn with font ``fi`` (MISSING: the placeholder box)."""
        key = (fi, ch)
        g = self._glyphs.get(key)
        if g is None:
            if len(self._glyphs) >= self.GLYPH_CACHE:
                self._glyphs.clear()
            if fi is MISSING:
                g = placeholder(self.fonts.size, self.ascent)
            elif (scale := self.fonts.scale(fi)) != 1.0:
                g = scaled_bitmap(self.fonts.font(fi), ch, scale)
            else:
                g = tight(self.fonts.font(fi), ch)
            self._glyphs[key] = g
        return g

    def runs(self, text: str) -> list[Run]:
        """Split into runs of one font; combining marks stay with their base's font. A character no font
        has is a MISSING run, or a RenderError when missing glyphs are not replaced."""
        fonts = self.fonts
        runs: list[Run] = []
        cur: int | None = -1
        start, cplx = 0, False
        for k, ch in enumerate(text):
            fi = fonts.font_for(ch)
            if fi is MISSING and not self.replace_missing:
                raise RenderError(fonts.describe_missing(text) or f"no font for {ch!r}")
            if unicodedata.combining(ch) and cur is not MISSING and cur >= 0 and ord(ch) in fonts.cmap(cur):
                fi = cur
            if fi != cur:
                if k > start:
                    runs.append((cur, text[start:k], cplx))
                cur, start, cplx = fi, k, False
            cplx = cplx or (fi is not MISSING and is_complex(ch))
        if len(text) > start:
            runs.append((cur, text[start:], cplx))
        return runs

    def _pieces(self, text: str) -> list[Piece]:
        """Pieces in pen order: one per character, or one per shaped run."""
        out: list[Piece] = []
        for fi, run, cplx in self.runs(text):
            if cplx:
                out.append(self._shaped(fi, run))  # type: ignore[arg-type]  # shaped runs have a font
            else:
                out.extend(self.glyph(fi, ch) for ch in run)
        return out

    def word(self, text: str) -> Piece:
        """The cached piece of a string without spaces."""
        p = self._words.get(text)
        if p is None:
            parts: list[tuple[int, Piece]] = []
            pen = 0.0
            for g in self._pieces(text):
                parts.append((round(pen), g))
                pen += g.adv
            p = self._words[text] = compose(parts, round(pen))
            if len(self._words) > self.WORD_CACHE:
                self._words.popitem(last=False)
        return p

    def extent(self, text: str) -> tuple[int, int]:
        """Horizontal ink extent (left, right) of a string from glyph metrics, without compositing."""
        left, right, pen = 0, 0, 0.0
        first = True
        for p in self._pieces(text):
            if p.mask is not None:
                x = round(pen)
                left = x + p.left if first else min(left, x + p.left)
                right = x + p.right if first else max(right, x + p.right)
                first = False
            pen += p.adv
        return left, right

    def break_word(self, atom: Atom, source: str, avail: int) -> list[Atom]:
        """Split a word wider than a line into pieces that each fit (never before a combining mark)."""
        # positions of the atom's visible characters in the source text, to give pieces exact offsets
        if atom.end - atom.start == len(atom.text):
            where: list[int] | range = range(atom.start, atom.end)  # no invisible characters inside
        else:
            where = [k for k in range(atom.start, atom.end) if not is_ignorable(source[k])]
        text = atom.text
        pieces: list[Atom] = []
        cuts = self._cuts(text, avail)
        for a, b in zip([0, *cuts], cuts, strict=False):
            end = where[b - 1] + 1 if b < len(text) else atom.end
            pieces.append(Atom(text[a:b], atom.space_before and not pieces, where[a], end))
        return pieces

    def _cuts(self, text: str, avail: int) -> list[int]:
        """End offsets of the pieces of an over-wide word (cached: long words and URLs recur)."""
        cached = self._breaks.get(text)
        if cached is not None:
            return cached
        runs = self.runs(text)
        if any(c for _, _, c in runs):
            cuts = self._cuts_search(text, avail)
        else:
            cuts = self._cuts_simple(text, [self.glyph(fi, ch) for fi, run, _ in runs for ch in run], avail)
        if len(self._breaks) > self.WORD_CACHE:
            self._breaks.clear()
        self._breaks[text] = cuts
        return cuts

    @staticmethod
    def _cuts_simple(text: str, glyphs: list[Piece], avail: int) -> list[int]:
        """One pass over glyph metrics: a piece ends before the first character that would overflow."""
        cuts: list[int] = []
        a = 0
        while a < len(text):
            pen, left, right, k = 0.0, 0, 0, a
            while k < len(text):
                g = glyphs[k]
                if g.mask is not None:
                    x = round(pen)
                    nl, nr = (
                        (x + g.left, x + g.right)
                        if k == a
                        else (min(left, x + g.left), max(right, x + g.right))
                    )
                    if nr - min(nl, 0) > avail and k > a:
                        break
                    left, right = nl, nr
                pen += g.adv
                k += 1
            while a + 1 < k < len(text) and unicodedata.combining(text[k]):
                k -= 1  # never separate a combining mark from its base
            cuts.append(k)
            a = k
        return cuts

    def _fits(self, text: str, avail: int) -> bool:
        left, right = self.extent(text)
        return right - min(left, 0) <= avail

    def _cuts_search(self, text: str, avail: int) -> list[int]:
        """Shaped scripts: the longest fitting prefix by binary search on the shaped width."""
        cuts: list[int] = []
        at = 0
        while at < len(text):
            rest = text[at:]
            if self._fits(rest, avail):
                cut = len(rest)
            else:
                lo, hi = 1, len(rest)
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if self._fits(rest[:mid], avail):
                        lo = mid
                    else:
                        hi = mid - 1
                cut = lo
                while 1 < cut < len(rest) and unicodedata.combining(rest[cut]):
                    cut -= 1
            at += cut
            cuts.append(at)
        return cuts
