"""Drawing a Layout to pixels and encoding them: coverage, the two-colour palette, image files."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageColor

from sparrow.render.config import RenderConfig
from sparrow.render.layout import Layout
from sparrow.render.png import png_bytes


class Raster:
    """Pixels and files of laid-out frames for one RenderConfig."""

    def __init__(self, config: RenderConfig):
        self.config = config
        fg, bg = ImageColor.getrgb(config.fg)[:3], ImageColor.getrgb(config.bg)[:3]
        ramp = np.arange(256, dtype=np.int32)[:, None]
        # coverage 0..255 -> colour, rounded; integer maths so output is identical everywhere
        self._lut = (
            (np.array(bg)[None, :] * (255 - ramp) + np.array(fg)[None, :] * ramp + 127) // 255
        ).astype(np.uint8)
        self._grey = fg[0] == fg[1] == fg[2] and bg[0] == bg[1] == bg[2]
        self._black_on_white = fg == (0, 0, 0) and bg == (255, 255, 255)

    def coverage_mask(self, layout: Layout) -> np.ndarray:
        """Ink coverage (0 = background, 255 = full text colour) of a laid-out frame."""
        cfg = self.config
        canvas = np.zeros((cfg.height, cfg.width), dtype=np.uint8)
        for w in layout.words:
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
        """The flat RGB palette of mode P frames (None for mode L)."""
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
        if cfg.image_format == "png" and image.mode in ("L", "P"):
            palette = image.getpalette() if image.mode == "P" else None
            return png_bytes(np.asarray(image), palette, cfg.png_compress_level)
        buf = io.BytesIO()
        if cfg.image_format == "png":
            image.save(buf, format="PNG", compress_level=cfg.png_compress_level)
        else:
            fmt = "JPEG" if cfg.image_format == "jpg" else "WEBP"
            image.convert("L" if image.mode == "L" else "RGB").save(buf, format=fmt, quality=cfg.quality)
        return buf.getvalue()
