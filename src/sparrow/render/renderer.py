"""Renderer: the text-to-frame API of one RenderConfig (fonts, layout, pixels, files)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sparrow.render.config import RenderConfig, RenderError
from sparrow.render.fonts import FontChain, font_chain
from sparrow.render.layout import Layout, place, wrap
from sparrow.render.raster import Raster
from sparrow.render.typesetter import Typesetter


class Renderer:
    """Lays out and draws text for one RenderConfig. Construct one per worker and keep it: fonts are
    loaded once and glyph and word bitmaps are cached across frames."""

    def __init__(self, config: RenderConfig):
        config.validate()
        self.config = config
        self.chain = font_chain(config.fonts, include_defaults=config.default_fonts)
        self.fonts = FontChain(self.chain, config.font_size)
        self.ascent, self.descent = self.fonts.metrics()
        self.line_height = config.line_height or (self.ascent + self.descent)
        if self.line_height <= 0:
            raise RenderError("line height must be positive")
        inner_h = config.height - 2 * config.margin
        self.max_lines = max(1, (inner_h - self.ascent - self.descent) // self.line_height + 1)
        self._typesetter = Typesetter(self.fonts, replace_missing=config.missing_glyphs == "replace")
        self._raster = Raster(config)
        self._plain: dict[str, bool] = {}

    # -- fonts

    def cmap(self, i: int) -> frozenset[int]:
        """Code points of font ``i`` of the chain."""
        return self.fonts.cmap(i)

    def font_for(self, ch: str) -> int | None:
        """Index in the chain of the first font that has ``ch``, or None."""
        return self.fonts.font_for(ch)

    def missing_glyphs(self, text: str) -> list[tuple[int, str]]:
        """``(offset, char)`` of the first occurrence of each character no font in the chain can draw
        (drawn as placeholders with ``missing_glyphs="replace"``)."""
        return self.fonts.missing(text)

    def describe_missing(self, text: str) -> str | None:
        """A one-line reason naming the characters no font has, or None when all can be drawn."""
        return self.fonts.describe_missing(text)

    # -- layout

    def layout(self, text: str) -> Layout:
        """Wrap ``text`` to the frame width and place every line; ``fits`` is False when it needs more
        height than the frame has (the caller then puts the rest on another frame). RenderError for a
        character no font has when the config's ``missing_glyphs`` is ``"error"``."""
        cfg = self.config
        rows = wrap(self._typesetter, text, cfg.width - 2 * cfg.margin, self._plain)
        return place(rows, cfg, self.ascent, self.line_height, self.max_lines)

    # -- drawing

    def coverage_mask(self, layout: Layout) -> np.ndarray:
        """Ink coverage (0 = background, 255 = full text colour) of a laid-out frame."""
        return self._raster.coverage_mask(layout)

    @property
    def mode(self) -> str:
        """Image mode of frames: L when both colours are grey, else P (see ``Raster.mode``)."""
        return self._raster.mode

    @property
    def palette(self) -> list[int] | None:
        """The flat RGB palette of mode P frames (None for mode L)."""
        return self._raster.palette

    def pixels(self, layout: Layout) -> np.ndarray:
        """The frame's pixel values (grey levels for mode L, palette indices for mode P)."""
        return self._raster.pixels(layout)

    def render(self, layout: Layout) -> Image.Image:
        """The frame as a PIL image (mode ``self.mode``)."""
        return self._raster.render(layout)

    def frame_bytes(self, layout: Layout) -> bytes:
        """The encoded frame file in the configured format."""
        return self._raster.frame_bytes(layout)

    def encode(self, image: Image.Image) -> bytes:
        """Image bytes in the configured format."""
        return self._raster.encode(image)

    def render_text(self, text: str) -> Image.Image:
        """Lay out and draw ``text`` on one frame; RenderError if it does not fit, or if it has a character
        no font has and the config's ``missing_glyphs`` is ``"error"``."""
        if self.config.missing_glyphs == "error":
            reason = self.describe_missing(text)
            if reason:
                raise RenderError(reason)
        lay = self.layout(text)
        if not lay.fits:
            raise RenderError(f"text needs {len(lay.lines)} lines; the frame holds {self.max_lines}")
        return self.render(lay)
