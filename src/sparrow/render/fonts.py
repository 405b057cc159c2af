"""Font files and the fallback chain: which fonts exist on this machine, which characters each can draw,
and loading them at one size (``FontChain``). The world's video writer takes its font from here too.

The default chain: DejaVu Sans (system copy, else the one bundled with matplotlib, so it works without
system fonts), a CJK font where installed, matplotlib's STIX for rarer symbols, then a colour emoji font
where installed. Each character is drawn with the first font whose character map has it.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageFont

from sparrow.render.config import RenderError
from sparrow.render.scripts import is_ignorable

DEJAVU_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)
CJK_PATHS = (
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
EMOJI_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",  # Debian / Ubuntu fonts-noto-color-emoji
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",  # Arch
    "/usr/share/fonts/google-noto-color-emoji-fonts/NotoColorEmoji.ttf",  # Fedora
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
)


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


def bundled_font(name: str) -> str | None:
    """Path of a font file shipped with matplotlib (the same file on every machine), or None."""
    # find_spec does not import matplotlib (slow); its fonts ship as package data.
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" / name
    return str(path) if path.is_file() else None


def _first_file(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None)


def default_fonts() -> list[FontSpec]:
    """The built-in chain on this machine: DejaVu Sans, a CJK font and an emoji font if installed, and
    STIX symbols before the emoji font (so installing emoji changes no character drawn before)."""
    found = [
        _first_file(DEJAVU_PATHS) or bundled_font("DejaVuSans.ttf"),
        _first_file(CJK_PATHS),
        bundled_font("STIXGeneral.ttf"),
        _first_file(EMOJI_PATHS),
    ]
    return [FontSpec(p) for p in found if p]


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


def _read(spec: FontSpec) -> tuple[frozenset[int], int | None]:
    """The font's character map and, for a colour bitmap font, the pixel size of its largest strike."""
    try:
        with TTFont(spec.path, fontNumber=spec.index, lazy=True) as tt:
            cmap = frozenset(tt.getBestCmap() or {})
            strike = None
            if "CBLC" in tt:  # colour bitmaps (Noto Color Emoji): FreeType loads them at a strike size only
                strike = max(s.bitmapSizeTable.ppemY for s in tt["CBLC"].strikes)
    except Exception as e:  # fontTools raises many types for unreadable files
        raise RenderError(f"cannot read font {spec.path}: {e}") from e
    return cmap, strike


def coverage(spec: FontSpec) -> frozenset[int]:
    """Code points the font has a glyph for (its character map)."""
    return _read(spec)[0]


class FontChain:
    """The fonts of one renderer at one pixel size, loaded on first use, and which font draws each
    character. Colour bitmap fonts (emoji) only load at their strike size: ``scale(i)`` says how much
    their glyphs must be shrunk to match the others."""

    def __init__(self, specs: list[FontSpec], size: int):
        self.specs = specs
        self.size = size
        n = len(specs)
        self._info: list[tuple[frozenset[int], int | None] | None] = [None] * n
        self._basic: list[ImageFont.FreeTypeFont | None] = [None] * n
        self._raqm: list[ImageFont.FreeTypeFont | None] = [None] * n
        self._font_of: dict[str, int | None] = {}

    def __len__(self) -> int:
        return len(self.specs)

    def _read(self, i: int) -> tuple[frozenset[int], int | None]:
        info = self._info[i]
        if info is None:  # read on first need: a CJK font's map is large
            info = self._info[i] = _read(self.specs[i])
        return info

    def cmap(self, i: int) -> frozenset[int]:
        """Code points of font ``i``."""
        return self._read(i)[0]

    def scale(self, i: int) -> float:
        """Factor from font ``i``'s loaded size to the chain's size (1.0 but for colour bitmap fonts)."""
        strike = self._read(i)[1]
        return 1.0 if strike is None else self.size / strike

    def font(self, i: int, complex_script: bool = False) -> ImageFont.FreeTypeFont:
        """Font ``i`` with PIL's basic layout, or with Raqm shaping for ``complex_script`` runs."""
        cache = self._raqm if complex_script else self._basic
        if cache[i] is None:
            engine = ImageFont.Layout.RAQM if complex_script else ImageFont.Layout.BASIC
            spec = self.specs[i]
            size = self._read(i)[1] or self.size
            try:
                cache[i] = ImageFont.truetype(spec.path, size, index=spec.index, layout_engine=engine)
            except OSError as e:
                raise RenderError(f"cannot load font {spec.path}: {e}") from e
        return cache[i]  # type: ignore[return-value]

    def metrics(self) -> tuple[int, int]:
        """Ascent and descent in pixels of the first font (the one that sets line height)."""
        ascent, descent = self.font(0).getmetrics()
        scale = self.scale(0)
        return round(ascent * scale), round(descent * scale)

    def space_width(self) -> int:
        """Advance of a space in the first font, in whole pixels."""
        return round(self.font(0).getlength(" ") * self.scale(0))

    def font_for(self, ch: str) -> int | None:
        """Index of the first font that has ``ch``, or None."""
        i = self._font_of.get(ch, -1)
        if i == -1:
            cp = ord(ch)
            i = next((k for k in range(len(self.specs)) if cp in self.cmap(k)), None)
            self._font_of[ch] = i
        return i

    def missing(self, text: str) -> list[tuple[int, str]]:
        """``(offset, char)`` of the first occurrence of each character no font can draw."""
        chars = {
            ch for ch in set(text) if not ch.isspace() and not is_ignorable(ch) and self.font_for(ch) is None
        }
        return sorted((text.index(ch), ch) for ch in chars)

    def describe_missing(self, text: str) -> str | None:
        """A one-line reason naming the characters no font has, or None when all can be drawn."""
        missing = self.missing(text)
        if not missing:
            return None
        shown = ", ".join(
            f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')} at offset {off}" for off, c in missing[:3]
        )
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        fonts = ", ".join(s.name for s in self.specs)
        return f"no font can draw {shown}{more} (fonts tried: {fonts}; add one with --font)"
