"""Fonts with fallback, text layout that never clips, and frame rendering for pseudo-videos.

Text is typeset by a small engine of our own instead of PIL's per-call layout, for two reasons:

- exactness: every glyph's ink box is known from its cached bitmap, so the layout can *prove* that all
  ink lies inside the margins (the reference implementation silently clipped text that did not fit);
- speed: glyph bitmaps and whole-word bitmaps are rendered once per renderer and blitted with numpy,
  fonts are loaded once, and measuring a line is a sum of cached advances.

The parts, in the order text goes through them:

- ``fonts``: the font chain (``--font`` files, DejaVu, CJK, STIX, emoji) and which font draws each
  character; a character no font has is drawn as a placeholder box or refused (``missing_glyphs``);
- ``scripts``: script classes (CJK wraps per character, Arabic/Hebrew/Indic are shaped with Raqm,
  right-to-left paragraphs are right-aligned) and the split of a line into words;
- ``typesetter`` and ``glyphs``: cached glyph and word bitmaps, breaking over-wide words;
- ``layout``: greedy wrapping and exact ink boxes (``Layout.fits``);
- ``raster`` and ``png``: pixels, the two-colour palette, image files.

``Renderer(config)`` ties them together; build one per worker and reuse it.
"""

from sparrow.render.config import IMAGE_FORMATS, MISSING_GLYPHS, RenderConfig, RenderError
from sparrow.render.fonts import FontSpec, coverage, default_fonts, font_chain
from sparrow.render.layout import Layout, Line, Word
from sparrow.render.png import png_bytes
from sparrow.render.renderer import Renderer
from sparrow.render.scripts import CJK_RANGES, NO_BREAK_BEFORE, is_cjk, is_ignorable

__all__ = [
    "CJK_RANGES",
    "IMAGE_FORMATS",
    "MISSING_GLYPHS",
    "NO_BREAK_BEFORE",
    "FontSpec",
    "Layout",
    "Line",
    "RenderConfig",
    "RenderError",
    "Renderer",
    "Word",
    "coverage",
    "default_fonts",
    "font_chain",
    "is_cjk",
    "is_ignorable",
    "png_bytes",
]
