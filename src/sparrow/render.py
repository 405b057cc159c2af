"""Fonts with fallback, text layout that never clips, and frame rendering for pseudo-videos.

Text is typeset by a small engine of our own instead of PIL's per-call layout, for two reasons:

- exactness: every glyph's ink box is known from its cached bitmap, so the layout can *prove* that all
  ink lies inside the margins (the reference implementation silently clipped text that did not fit);
- speed: glyph bitmaps and whole-word bitmaps are rendered once per process and blitted with numpy,
  fonts are loaded once, and measuring a line is a sum of cached advances.

Fonts form a chain: the user's ``--font`` files first, then DejaVu Sans (system copy, else the one
bundled with matplotlib, so it works without system fonts), then Noto Sans CJK (or another CJK font)
where installed, then matplotlib's STIX for rarer symbols. Each character is drawn with the first font
whose character map has it; a character that no font has is reported (``missing_glyphs``) so the caller
can refuse the record instead of drawing empty boxes.

Scripts without spaces (Chinese, Japanese) wrap per character. Scripts that need shaping (Arabic,
Hebrew, Indic, ...) are shaped per word with PIL's Raqm engine; right-to-left paragraphs are laid out
right-aligned with words in visual order.
"""

from __future__ import annotations

import importlib.util
import io
import re
import struct
import unicodedata
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

IMAGE_FORMATS = ("png", "jpg", "webp")

_SYSTEM_DEJAVU = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


class RenderError(ValueError):
    """Text cannot be rendered as asked (no font, a character no font has, bad option)."""


# ------------------------------------------------------------------------------------------- fonts


@dataclass(frozen=True)
class FontSpec:
    """A font file and the face index inside it (``.ttc`` collections hold several faces)."""

    path: str
    index: int = 0

    @classmethod
    def parse(cls, spec: str) -> FontSpec:
        """``path`` or ``path#index``."""
        path, _, idx = spec.partition("#")
        if idx and not idx.isdigit():
            raise RenderError(f"font {spec!r}: face index after '#' must be a number")
        return cls(path=str(Path(path).expanduser()), index=int(idx or 0))

    @property
    def name(self) -> str:
        return Path(self.path).name + (f"#{self.index}" if self.index else "")


def _matplotlib_font(name: str) -> str | None:
    # find_spec does not import matplotlib (slow); its fonts ship as package data.
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" / name
    return str(path) if path.is_file() else None


def default_fonts() -> list[FontSpec]:
    """The built-in chain on this machine: DejaVu Sans, a CJK font if installed, STIX symbols."""
    chain: list[FontSpec] = []
    dejavu = next((p for p in _SYSTEM_DEJAVU if Path(p).is_file()), None) or _matplotlib_font(
        "DejaVuSans.ttf"
    )
    if dejavu:
        chain.append(FontSpec(dejavu))
    cjk = next((p for p in _CJK_FONTS if Path(p).is_file()), None)
    if cjk:
        chain.append(FontSpec(cjk))
    stix = _matplotlib_font("STIXGeneral.ttf")
    if stix:
        chain.append(FontSpec(stix))
    return chain


def font_chain(extra: tuple[str, ...] | list[str] = (), include_defaults: bool = True) -> list[FontSpec]:
    """The fonts to try, in order: ``extra`` (user fonts) first, then the defaults."""
    chain = [FontSpec.parse(s) for s in extra]
    for spec in chain:
        if not Path(spec.path).is_file():
            raise RenderError(f"font file not found: {spec.path}")
    if include_defaults:
        chain += [d for d in default_fonts() if d not in chain]
    if not chain:
        raise RenderError("no font found: install DejaVu (fonts-dejavu-core) or pass --font FILE")
    return chain


_CMAPS: dict[FontSpec, frozenset[int]] = {}


def coverage(spec: FontSpec) -> frozenset[int]:
    """Code points the font has a glyph for (its character map), read once per process."""
    if spec not in _CMAPS:
        from fontTools.ttLib import TTFont

        try:
            with TTFont(spec.path, fontNumber=spec.index, lazy=True) as tt:
                cmap = tt.getBestCmap() or {}
        except Exception as e:  # fontTools raises many types for unreadable files
            raise RenderError(f"cannot read font {spec.path}: {e}") from e
        _CMAPS[spec] = frozenset(cmap)
    return _CMAPS[spec]


# ------------------------------------------------------------------------------ character classes

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
_COMPLEX_RANGES = (
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
_NO_BREAK_AFTER = set("（［｛〔〈《「『【〘〖")
_WORD_RE = re.compile(r"\S+")


def _in(ranges: tuple[tuple[int, int], ...], cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def is_cjk(ch: str) -> bool:
    """Characters of scripts written without spaces: each one is a word of its own for wrapping."""
    cp = ord(ch)
    return cp >= 0x2E80 and _in(CJK_RANGES, cp)


def _is_complex(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x0590 <= cp <= 0x18AF
        and _in(_COMPLEX_RANGES, cp)
        or 0xFB1D <= cp <= 0xFEFF
        and _in(_COMPLEX_RANGES, cp)
    )


def is_ignorable(ch: str) -> bool:
    """Invisible characters that are not drawn (format/control characters, variation selectors)."""
    if ch in "\n\t":
        return False
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return True
    return unicodedata.category(ch) in ("Cc", "Cf")


def _rtl_paragraph(text: str) -> bool:
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


# ----------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class RenderConfig:
    """How frames look. Defaults follow the Sparrow paper: 448x448, 20 px text, black on white, 20 px
    margins (all four sides here, so nothing touches the border)."""

    width: int = 448
    height: int = 448
    font_size: int = 20
    margin: int = 20
    line_height: int | None = None  # None: ascent + descent of the first font in the chain
    fonts: tuple[str, ...] = ()  # user fonts tried before the built-in chain ("path" or "path#index")
    default_fonts: bool = True
    fg: str = "#000000"
    bg: str = "#ffffff"
    image_format: str = "png"
    quality: int = 90  # jpg / webp
    png_compress_level: int = 3  # zlib level: 3 is ~2x faster than 6 for ~1.15x the bytes on text frames

    def validate(self) -> None:
        if self.image_format not in IMAGE_FORMATS:
            raise RenderError(f"image format must be one of {IMAGE_FORMATS}, got {self.image_format!r}")
        if self.font_size < 4:
            raise RenderError("font size must be at least 4 px")
        inner_w, inner_h = self.width - 2 * self.margin, self.height - 2 * self.margin
        if inner_w < 2 * self.font_size or inner_h < 2 * self.font_size:
            raise RenderError(
                f"a {self.width}x{self.height} frame with {self.margin} px margins leaves no room for "
                f"{self.font_size} px text; use a larger frame, smaller margins or a smaller font"
            )
        if not 1 <= self.quality <= 100:
            raise RenderError("quality must be between 1 and 100")
        if not 0 <= self.png_compress_level <= 9:
            raise RenderError("PNG compress level must be between 0 and 9")
        for c in (self.fg, self.bg):
            try:
                ImageColor.getrgb(c)
            except ValueError as e:
                raise RenderError(f"unknown colour {c!r}") from e

    @property
    def extension(self) -> str:
        return self.image_format


# ---------------------------------------------------------------------------------------- layout


@dataclass
class Word:
    """One drawn unit (a word, a CJK character, or a piece of a broken word): its characters are
    ``source[start:end]`` of the laid-out text (minus invisible ones); ``box`` is its ink on the canvas
    as (left, top, right, bottom), right/bottom exclusive, or None when it has no ink."""

    text: str
    x: int
    box: tuple[int, int, int, int] | None
    start: int = 0
    end: int = 0
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # coverage of ``box``


@dataclass
class Line:
    words: list[Word]
    baseline: int
    start: int  # offset in the laid-out text of the line's first character
    rtl: bool = False
    box: tuple[int, int, int, int] | None = None  # union of the words' ink boxes

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
    def box(self) -> tuple[int, int, int, int] | None:
        return _union([ln.box for ln in self.lines])

    @property
    def words(self) -> list[Word]:
        return [w for ln in self.lines for w in ln.words]

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
            lines.append(Line(words, ln.baseline, ln.start, ln.rtl, _union([w.box for w in words])))
        while lines and not lines[-1].words:
            lines.pop()
        box = _union([ln.box for ln in lines])
        return Layout(lines, self.width, self.height, self.margin, _inside(box, self), self.max_lines)

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


def _inside(box: tuple[int, int, int, int] | None, lay: Layout) -> bool:
    m = lay.margin
    return box is None or (
        box[0] >= m and box[1] >= m and box[2] <= lay.width - m and box[3] <= lay.height - m
    )


def _union(boxes: list[tuple[int, int, int, int] | None]) -> tuple[int, int, int, int] | None:
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return (
        min(b[0] for b in real),
        min(b[1] for b in real),
        max(b[2] for b in real),
        max(b[3] for b in real),
    )


@dataclass
class _Piece:
    """A measured, rendered string relative to its pen start on the baseline.

    ``adv`` is the pen advance (whole pixels); the ink box is (l, t, r, b); ``mask`` holds the coverage
    of exactly that box (None when there is no ink)."""

    adv: float
    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0
    mask: np.ndarray | None = field(default=None, repr=False)


@dataclass
class _Atom:
    text: str  # visible characters only
    space_before: bool
    start: int  # offsets of the atom in the laid-out text
    end: int


class Renderer:
    """Lays out and draws text for one RenderConfig. Create through ``get_renderer`` to reuse fonts and
    glyph caches across frames in a process."""

    WORD_CACHE = 50_000
    GLYPH_CACHE = 200_000

    def __init__(self, config: RenderConfig):
        config.validate()
        self.config = config
        self.chain = font_chain(config.fonts, include_defaults=config.default_fonts)
        self._cmaps: list[frozenset[int] | None] = [None] * len(self.chain)
        self._basic: list[ImageFont.FreeTypeFont | None] = [None] * len(self.chain)
        self._raqm: list[ImageFont.FreeTypeFont | None] = [None] * len(self.chain)
        primary = self._font(0)
        self.ascent, self.descent = primary.getmetrics()
        self.line_height = config.line_height or (self.ascent + self.descent)
        if self.line_height <= 0:
            raise RenderError("line height must be positive")
        inner_h = config.height - 2 * config.margin
        self.max_lines = max(1, (inner_h - self.ascent - self.descent) // self.line_height + 1)
        self._font_of: dict[str, int | None] = {}
        self._plain: dict[str, bool] = {}
        self._breaks: dict[str, list[int]] = {}
        self._glyphs: dict[tuple[int, str], _Piece] = {}
        self._words: OrderedDict[str, _Piece] = OrderedDict()
        fg, bg = ImageColor.getrgb(config.fg)[:3], ImageColor.getrgb(config.bg)[:3]
        ramp = np.arange(256, dtype=np.int32)[:, None]
        # coverage 0..255 -> colour, rounded; integer maths so output is identical everywhere
        self._lut = (
            (np.array(bg)[None, :] * (255 - ramp) + np.array(fg)[None, :] * ramp + 127) // 255
        ).astype(np.uint8)
        self._grey = fg[0] == fg[1] == fg[2] and bg[0] == bg[1] == bg[2]
        self._black_on_white = fg == (0, 0, 0) and bg == (255, 255, 255)

    # -- fonts

    def _font(self, i: int, complex_script: bool = False) -> ImageFont.FreeTypeFont:
        cache = self._raqm if complex_script else self._basic
        if cache[i] is None:
            engine = ImageFont.Layout.RAQM if complex_script else ImageFont.Layout.BASIC
            spec = self.chain[i]
            try:
                cache[i] = ImageFont.truetype(
                    spec.path, self.config.font_size, index=spec.index, layout_engine=engine
                )
            except OSError as e:
                raise RenderError(f"cannot load font {spec.path}: {e}") from e
        return cache[i]  # type: ignore[return-value]

    def cmap(self, i: int) -> frozenset[int]:
        """Code points of font ``i`` of the chain (read on first need: a CJK font's map is large)."""
        cmap = self._cmaps[i]
        if cmap is None:
            cmap = self._cmaps[i] = coverage(self.chain[i])
        return cmap

    def font_for(self, ch: str) -> int | None:
        """Index in the chain of the first font that has ``ch``, or None."""
        i = self._font_of.get(ch, -1)
        if i == -1:
            cp = ord(ch)
            i = next((k for k in range(len(self.chain)) if cp in self.cmap(k)), None)
            self._font_of[ch] = i
        return i

    def missing_glyphs(self, text: str) -> list[tuple[int, str]]:
        """``(offset, char)`` of the first occurrence of each character no font in the chain can draw."""
        missing = {
            ch for ch in set(text) if not ch.isspace() and self.font_for(ch) is None and not is_ignorable(ch)
        }
        return sorted((text.index(ch), ch) for ch in missing)

    def describe_missing(self, text: str) -> str | None:
        """A one-line reason naming the characters no font has, or None when all can be drawn."""
        missing = self.missing_glyphs(text)
        if not missing:
            return None
        shown = ", ".join(
            f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')} at offset {off}" for off, c in missing[:3]
        )
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        fonts = ", ".join(s.name for s in self.chain)
        return f"no font can draw {shown}{more} (fonts tried: {fonts}; add one with --font)"

    # -- measuring and rasterising

    @staticmethod
    def _tight(font: ImageFont.FreeTypeFont, text: str) -> _Piece:
        """Render ``text`` with ``font`` once and crop to its exact ink."""
        adv = font.getlength(text)
        bl, bt, br, bb = font.getbbox(text, anchor="ls")
        img = Image.new("L", (max(1, br - bl), max(1, bb - bt)), 0)
        ImageDraw.Draw(img).text((-bl, -bt), text, font=font, fill=255, anchor="ls")
        arr = np.asarray(img)
        ys, xs = np.nonzero(arr)
        if len(ys) == 0:
            return _Piece(adv=adv)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        return _Piece(
            adv=adv,
            left=int(bl + x0),
            top=int(bt + y0),
            right=int(bl + x1),
            bottom=int(bt + y1),
            mask=np.ascontiguousarray(arr[y0:y1, x0:x1]),
        )

    def _glyph(self, fi: int, ch: str) -> _Piece:
        key = (fi, ch)
        g = self._glyphs.get(key)
        if g is None:
            if len(self._glyphs) >= self.GLYPH_CACHE:
                self._glyphs.clear()
            g = self._glyphs[key] = self._tight(self._font(fi), ch)
        return g

    def _runs(self, text: str) -> list[tuple[int, str, bool]]:
        """Split into (font index, run, needs shaping); combining marks stay with their base's font."""
        runs: list[tuple[int, str, bool]] = []
        cur_font, start, cplx = -1, 0, False
        for k, ch in enumerate(text):
            fi = self.font_for(ch)
            if fi is None:
                raise RenderError(self.describe_missing(text) or f"no font for {ch!r}")
            if unicodedata.combining(ch) and cur_font >= 0 and ord(ch) in self.cmap(cur_font):
                fi = cur_font
            if fi != cur_font:
                if k > start:
                    runs.append((cur_font, text[start:k], cplx))
                cur_font, start, cplx = fi, k, False
            cplx = cplx or _is_complex(ch)
        if len(text) > start:
            runs.append((cur_font, text[start:], cplx))
        return runs

    def _measure(self, text: str) -> _Piece:
        """Measure and rasterise a string (no spaces inside) from cached glyphs or shaped runs."""
        parts: list[tuple[int, _Piece]] = []
        pen = 0.0
        for fi, run, cplx in self._runs(text):
            if cplx:
                p = self._tight(self._font(fi, complex_script=True), run)
                parts.append((round(pen), p))
                pen += p.adv
                continue
            for ch in run:
                g = self._glyph(fi, ch)
                parts.append((round(pen), g))
                pen += g.adv
        return _compose(parts, round(pen))

    def _word(self, text: str) -> _Piece:
        p = self._words.get(text)
        if p is None:
            p = self._measure(text)
            self._words[text] = p
            if len(self._words) > self.WORD_CACHE:
                self._words.popitem(last=False)
        return p

    # -- layout

    def _atoms(self, line: str, base: int) -> list[_Atom]:
        """Words, with every CJK character a word of its own (no spaces are written between them).
        Closing CJK punctuation sticks to the character before it, opening punctuation to the one after.
        ``base`` is the line's offset in the laid-out text."""
        plain = self._plain
        if all(plain[c] if c in plain else self._is_plain(c) for c in set(line)):
            # fast path for the common case: words are the runs of non-space characters
            atoms = [
                _Atom(m.group(), True, base + m.start(), base + m.end()) for m in _WORD_RE.finditer(line)
            ]
            if atoms:
                atoms[0].space_before = False
            return atoms
        return self._atoms_general(line, base)

    def _is_plain(self, ch: str) -> bool:
        self._plain[ch] = ok = not is_cjk(ch) and not is_ignorable(ch)
        return ok

    @staticmethod
    def _atoms_general(line: str, base: int) -> list[_Atom]:
        atoms: list[_Atom] = []
        buf: list[str] = []
        start = -1
        space = False
        glue = False  # the last atom ended with an opening bracket: the next character joins it

        def flush(end: int) -> None:
            nonlocal space, start
            if buf:
                atoms.append(_Atom("".join(buf), space, base + start, base + end))
                buf.clear()
                space = False
            start = -1

        for k, ch in enumerate(line):
            if ch.isspace():
                flush(k)
                space = bool(atoms) or space
                glue = False
                continue
            if is_ignorable(ch):
                continue
            if is_cjk(ch):
                if ch in NO_BREAK_BEFORE and not space and (buf or atoms):
                    if buf:
                        buf.append(ch)
                    else:
                        atoms[-1].text += ch
                        atoms[-1].end = base + k + 1
                    continue
                if not glue:
                    flush(k)
                if start < 0:
                    start = k
                buf.append(ch)
                glue = ch in _NO_BREAK_AFTER
                if not glue:
                    flush(k + 1)
                continue
            if buf and is_cjk(buf[-1]) and not glue:
                flush(k)
            glue = False
            if start < 0:
                start = k
            buf.append(ch)
        flush(len(line))
        if atoms:
            atoms[0].space_before = False  # indentation at the start of a line is not kept
        return atoms

    @staticmethod
    def _paragraphs(text: str) -> list[tuple[int, str]]:
        """Logical lines with their offsets; a run of blank lines becomes one blank line."""
        out: list[tuple[int, str]] = []
        blank_at = -1
        offset = 0
        for raw in text.splitlines(keepends=True):
            body = raw.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
            if body.strip() and any(not is_ignorable(c) for c in body if not c.isspace()):
                if blank_at >= 0 and out:
                    out.append((blank_at, ""))
                out.append((offset, body))
                blank_at = -1
            elif blank_at < 0:
                blank_at = offset
            offset += len(raw)
        return out

    def _extent(self, text: str) -> tuple[int, int]:
        """Horizontal ink extent (left, right) of a string from glyph metrics, without compositing."""
        left, right, pen = 0, 0, 0.0
        first = True
        for fi, run, cplx in self._runs(text):
            pieces = (
                [self._tight(self._font(fi, complex_script=True), run)]
                if cplx
                else [self._glyph(fi, c) for c in run]
            )
            for p in pieces:
                if p.mask is not None:
                    x = round(pen)
                    left = x + p.left if first else min(left, x + p.left)
                    right = x + p.right if first else max(right, x + p.right)
                    first = False
                pen += p.adv
        return left, right

    def _break_word(self, atom: _Atom, source: str, avail: int) -> list[_Atom]:
        """Split a word wider than a line into pieces that each fit (never before a combining mark)."""
        # positions of the atom's visible characters in the source text, to give pieces exact offsets
        if atom.end - atom.start == len(atom.text):
            where: list[int] | range = range(atom.start, atom.end)  # no invisible characters inside
        else:
            where = [k for k in range(atom.start, atom.end) if not is_ignorable(source[k])]
        text = atom.text
        pieces: list[_Atom] = []
        cuts = self._cuts(text, avail)
        for a, b in zip([0, *cuts], cuts, strict=False):
            end = where[b - 1] + 1 if b < len(text) else atom.end
            pieces.append(_Atom(text[a:b], atom.space_before and not pieces, where[a], end))
        return pieces

    def _cuts(self, text: str, avail: int) -> list[int]:
        """End offsets of the pieces of an over-wide word (cached: long words and URLs recur)."""
        cached = self._breaks.get(text)
        if cached is not None:
            return cached
        runs = self._runs(text)
        cuts = (
            self._cuts_simple(text, runs, avail)
            if not any(c for _, _, c in runs)
            else self._cuts_search(text, avail)
        )
        if len(self._breaks) > self.WORD_CACHE:
            self._breaks.clear()
        self._breaks[text] = cuts
        return cuts

    def _cuts_simple(self, text: str, runs: list[tuple[int, str, bool]], avail: int) -> list[int]:
        """One pass over glyph metrics: a piece ends before the first character that would overflow."""
        glyphs = [self._glyph(fi, ch) for fi, run, _ in runs for ch in run]
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

    def _cuts_search(self, text: str, avail: int) -> list[int]:
        """Shaped scripts: the longest fitting prefix by binary search on the shaped width."""
        cuts: list[int] = []
        at = 0
        while at < len(text):
            rest = text[at:]
            left, right = self._extent(rest)
            if right - min(left, 0) <= avail:
                cut = len(rest)
            else:
                lo, hi = 1, len(rest)
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    left, right = self._extent(rest[:mid])
                    if right - min(left, 0) <= avail:
                        lo = mid
                    else:
                        hi = mid - 1
                cut = lo
                while 1 < cut < len(rest) and unicodedata.combining(rest[cut]):
                    cut -= 1
            at += cut
            cuts.append(at)
        return cuts

    def layout(self, text: str) -> Layout:
        """Wrap ``text`` to the frame width and place every line; ``fits`` is False when it needs more
        height than the frame has (the caller then puts the rest on another frame)."""
        cfg = self.config
        avail = cfg.width - 2 * cfg.margin
        space_adv = round(self._font(0).getlength(" "))
        rows: list[tuple[list[tuple[_Atom, int, _Piece]], bool, int]] = []  # (items at x, rtl, start)
        for base, para in self._paragraphs(text):
            atoms = self._atoms(para, base)
            if not atoms:
                rows.append(([], False, base))
                continue
            rtl = _rtl_paragraph(para)
            cur: list[tuple[_Atom, int, _Piece]] = []
            pen, ink_l, ink_r = 0, 0, 0
            queue, k = atoms, 0
            while k < len(queue):
                atom = queue[k]
                piece = self._word(atom.text)
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
                queue = queue[:k] + self._break_word(atom, text, avail) + queue[k + 1 :]
                first = queue[k]
                piece = self._word(first.text)
                rows.append(([(first, 0, piece)], rtl, first.start))
                k += 1
            if cur:
                rows.append((cur, rtl, cur[0][0].start))
        return self._place(rows)

    def _place(self, rows: list[tuple[list[tuple[_Atom, int, _Piece]], bool, int]]) -> Layout:
        cfg = self.config
        lines: list[Line] = []
        for i, (items, rtl, start) in enumerate(rows):
            baseline = cfg.margin + self.ascent + i * self.line_height
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
            lb = (x0, y0, x1, y1) if x1 > x0 else None
            lines.append(Line(words, baseline, start, rtl, lb))
        # shift everything down if some glyph reaches above the top margin (tall accents, stacked marks)
        top = min((ln.box[1] for ln in lines if ln.box is not None), default=cfg.margin)
        if top < cfg.margin:
            dy = cfg.margin - top
            for ln in lines:
                ln.baseline += dy
                for w in ln.words:
                    if w.box is not None:
                        w.box = (w.box[0], w.box[1] + dy, w.box[2], w.box[3] + dy)
                if ln.box is not None:
                    ln.box = (ln.box[0], ln.box[1] + dy, ln.box[2], ln.box[3] + dy)
        else:
            dy = 0
        lay = Layout(lines, cfg.width, cfg.height, cfg.margin, False, self.max_lines, dy)
        lay.fits = _inside(_union([ln.box for ln in lines]), lay)
        return lay

    # -- drawing

    def coverage_mask(self, layout: Layout) -> np.ndarray:
        """Ink coverage (0 = background, 255 = full text colour) of a laid-out frame."""
        cfg = self.config
        canvas = np.zeros((cfg.height, cfg.width), dtype=np.uint8)
        for ln in layout.lines:
            for w in ln.words:
                if w.box is None or w.mask is None:
                    continue
                x0, y0, x1, y1 = w.box
                # clip only as a safety net for layouts that do not fit (callers render fitting ones)
                cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, cfg.width), min(y1, cfg.height)
                if cx0 >= cx1 or cy0 >= cy1:
                    continue
                sub = w.mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
                dst = canvas[cy0:cy1, cx0:cx1]
                np.maximum(dst, sub, out=dst)
        return canvas

    @property
    def mode(self) -> str:
        """Image mode of frames: L (grey levels) when both colours are grey, else P (a palette of the
        256 blends of the two colours) — exact colours in small files; ``.convert("RGB")`` gives RGB."""
        return "L" if self._grey else "P"

    @property
    def palette(self) -> list[int] | None:
        return None if self._grey else self._lut.reshape(-1).tolist()

    def pixels(self, layout: Layout) -> np.ndarray:
        """The frame's pixel values (grey levels for mode L, palette indices for mode P)."""
        cov = self.coverage_mask(layout)
        if self._black_on_white:
            return np.subtract(255, cov, out=cov)
        return self._lut[:, 0][cov] if self._grey else cov

    def render(self, layout: Layout) -> Image.Image:
        """The frame as a PIL image (mode ``self.mode``)."""
        arr = self.pixels(layout)
        img = Image.frombytes(self.mode, (arr.shape[1], arr.shape[0]), arr.tobytes())
        if self.mode == "P":
            img.putpalette(self.palette)
        return img

    def frame_bytes(self, layout: Layout) -> bytes:
        """The encoded frame file (configured format). PNG goes straight from the pixel array."""
        if self.config.image_format == "png":
            return png_bytes(self.pixels(layout), self.palette, self.config.png_compress_level)
        return self.encode(self.render(layout))

    def encode(self, image: Image.Image) -> bytes:
        """Image bytes in the configured format."""
        cfg = self.config
        buf = io.BytesIO()
        if cfg.image_format == "png" and image.mode in ("L", "P"):
            return png_bytes(
                np.asarray(image), image.getpalette() if image.mode == "P" else None, cfg.png_compress_level
            )
        if cfg.image_format == "png":
            image.save(buf, format="PNG", compress_level=cfg.png_compress_level)
        elif cfg.image_format == "jpg":
            image.convert("L" if image.mode == "L" else "RGB").save(buf, format="JPEG", quality=cfg.quality)
        else:
            image.convert("L" if image.mode == "L" else "RGB").save(buf, format="WEBP", quality=cfg.quality)
        return buf.getvalue()

    def render_text(self, text: str) -> Image.Image:
        """Lay out and draw ``text`` on one frame; RenderError if it does not fit or cannot be drawn."""
        reason = self.describe_missing(text)
        if reason:
            raise RenderError(reason)
        lay = self.layout(text)
        if not lay.fits:
            raise RenderError(f"text needs {len(lay.lines)} lines; the frame holds {self.max_lines}")
        return self.render(lay)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bytes(arr: np.ndarray, palette: list[int] | None = None, level: int = 3) -> bytes:
    """Encode an 8-bit single-channel array as PNG: grey levels, or palette indices when ``palette``
    (flat RGB list) is given. Faster than PIL's encoder on text frames, whose adaptive row filters cost
    more than they save here: rows are stored unfiltered and zlib does the rest."""
    h, w = arr.shape
    raw = np.zeros((h, w + 1), dtype=np.uint8)  # each row starts with its filter type (0: none)
    raw[:, 1:] = arr
    color_type = 0 if palette is None else 3
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))]
    if palette is not None:
        chunks.append(_png_chunk(b"PLTE", bytes(palette)))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(raw.tobytes(), level)))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _compose(parts: list[tuple[int, _Piece]], adv: int) -> _Piece:
    inked = [(x, p) for x, p in parts if p.mask is not None]
    if not inked:
        return _Piece(adv=adv)
    if len(inked) == 1:
        x, p = inked[0]
        return _Piece(adv=adv, left=x + p.left, top=p.top, right=x + p.right, bottom=p.bottom, mask=p.mask)
    left = min(x + p.left for x, p in inked)
    right = max(x + p.right for x, p in inked)
    top = min(p.top for _, p in inked)
    bottom = max(p.bottom for _, p in inked)
    mask = np.zeros((bottom - top, right - left), dtype=np.uint8)
    for x, p in inked:
        dst = mask[p.top - top : p.bottom - top, x + p.left - left : x + p.right - left]
        np.maximum(dst, p.mask, out=dst)
    return _Piece(adv=adv, left=left, top=top, right=right, bottom=bottom, mask=mask)


_RENDERERS: dict[RenderConfig, Renderer] = {}


def get_renderer(config: RenderConfig) -> Renderer:
    """One Renderer per config per process: fonts are loaded once and glyph caches are reused."""
    r = _RENDERERS.get(config)
    if r is None:
        if len(_RENDERERS) > 8:
            _RENDERERS.clear()
        r = _RENDERERS[config] = Renderer(config)
    return r
