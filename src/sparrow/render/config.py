"""How frames look (RenderConfig) and the one error type of the renderer (RenderError)."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import ImageColor

IMAGE_FORMATS = ("png", "jpg", "webp")
MISSING_GLYPHS = ("replace", "error")


class RenderError(ValueError):
    """Text cannot be rendered as asked (no font, a character no font has, bad option)."""


@dataclass(frozen=True)
class RenderConfig:
    """How frames look. Defaults follow the Sparrow paper: 448x448, 20 px text, black on white, 20 px
    margins (all four sides here, so nothing touches the border).

    ``missing_glyphs`` says what happens to a character no font in the chain can draw: ``"replace"``
    draws a visible placeholder box in its place, ``"error"`` makes layout raise RenderError.

    Each field's comment is also its ``sparrow synth`` option's help."""

    width: int = 448  # Frame width in pixels.
    height: int = 448  # Frame height in pixels.
    font_size: int = 20  # Font size in pixels.
    margin: int = 20  # Margin on every side, pixels.
    line_height: int | None = None  # None: ascent + descent of the first font in the chain
    fonts: tuple[str, ...] = ()  # user fonts tried before the built-in chain ("path" or "path#index")
    default_fonts: bool = True
    fg: str = "#000000"  # Text colour (name or #rrggbb).
    bg: str = "#ffffff"  # Background colour (name or #rrggbb).
    image_format: str = "png"  # Frame image format: png, jpg or webp.
    quality: int = 90  # JPEG/WebP quality (1-100).
    # PNG zlib level 0-9 (1: fastest, 9: smallest); 3 is ~2x faster than 6 for ~1.15x the bytes on text
    # frames.
    png_compress_level: int = 3
    # A character no font can draw: 'replace' (draw a placeholder box, count it in the sample's meta) or
    # 'error' (the record goes to errors.jsonl).
    missing_glyphs: str = "replace"

    def validate(self) -> None:
        """Raise RenderError (one line, naming the option) for settings that cannot work."""
        if self.image_format not in IMAGE_FORMATS:
            raise RenderError(f"image format must be one of {IMAGE_FORMATS}, got {self.image_format!r}")
        if self.missing_glyphs not in MISSING_GLYPHS:
            raise RenderError(f"missing glyphs must be one of {MISSING_GLYPHS}, got {self.missing_glyphs!r}")
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
        """File extension of the frames (the image format's name)."""
        return self.image_format
