"""A tiny CJK test font built on the fly with fontTools, so CJK tests need no installed CJK font.

Every covered character gets a distinct glyph: a square outline with a bar whose position depends on
the code point, so rendered pixels differ between characters and a missing glyph cannot pass as drawn.
"""

from __future__ import annotations

from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

# 40 common Han characters plus CJK punctuation used by the tests.
CJK_CHARS = (
    "中文字的一是不了人我在有他这为之大来以个国到说们和地也子时道出而要于就下得可过天去能对"
    + "。，、！？「」（）"
)


def _rect(pen: TTGlyphPen, x0: int, y0: int, x1: int, y1: int) -> None:
    pen.moveTo((x0, y0))
    pen.lineTo((x0, y1))
    pen.lineTo((x1, y1))
    pen.lineTo((x1, y0))
    pen.closePath()


def make_cjk_font(path: Path, chars: str = CJK_CHARS) -> Path:
    """Write a TrueType font covering ``chars`` (and the space) to ``path``."""
    names = [".notdef", "space"] + [f"uni{ord(c):04X}" for c in chars]
    fb = FontBuilder(unitsPerEm=1000, isTTF=True)
    fb.setupGlyphOrder(names)
    cmap = {32: "space"}
    cmap.update({ord(c): f"uni{ord(c):04X}" for c in chars})
    fb.setupCharacterMap(cmap)
    glyphs = {}
    for name in names:
        pen = TTGlyphPen(None)
        if name == "space":
            glyphs[name] = pen.glyph()
            continue
        # outer square (drawn clockwise) with a hollow centre (counter-clockwise)
        _rect(pen, 80, -80, 920, 760)
        pen.moveTo((200, 40))
        pen.lineTo((800, 40))
        pen.lineTo((800, 640))
        pen.lineTo((200, 640))
        pen.closePath()
        if name != ".notdef":
            y = 80 + (int(name[3:], 16) * 37) % 480
            _rect(pen, 200, y, 800, y + 80)
        glyphs[name] = pen.glyph()
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({n: (1000 if n != "space" else 300, 80) for n in names})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": "SparrowTestCJK", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    fb.save(str(path))
    return path
