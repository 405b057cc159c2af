"""Rasterised strings cropped to their exact ink (``Piece``): outline glyphs, scaled colour-bitmap
glyphs (emoji), the placeholder box drawn for a character no font has, and composition of pieces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@dataclass
class Piece:
    """A measured, rendered string relative to its pen start on the baseline.

    ``adv`` is the pen advance; the ink box is (left, top, right, bottom), right/bottom exclusive;
    ``mask`` holds the coverage (0..255) of exactly that box (None when there is no ink)."""

    adv: float
    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0
    mask: np.ndarray | None = field(default=None, repr=False)


def _crop(adv: float, arr: np.ndarray, left: int, top: int) -> Piece:
    """The piece whose coverage is ``arr`` placed at (left, top), cropped to its ink."""
    ys, xs = np.nonzero(arr)
    if len(ys) == 0:
        return Piece(adv=adv)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Piece(
        adv=adv,
        left=int(left + x0),
        top=int(top + y0),
        right=int(left + x1),
        bottom=int(top + y1),
        mask=np.ascontiguousarray(arr[y0:y1, x0:x1]),
    )


def tight(font: ImageFont.FreeTypeFont, text: str) -> Piece:
    """Render ``text`` with an outline ``font`` once and crop to its exact ink."""
    adv = font.getlength(text)
    bl, bt, br, bb = font.getbbox(text, anchor="ls")
    img = Image.new("L", (max(1, br - bl), max(1, bb - bt)), 0)
    ImageDraw.Draw(img).text((-bl, -bt), text, font=font, fill=255, anchor="ls")
    return _crop(adv, np.asarray(img), bl, bt)


def scaled_bitmap(font: ImageFont.FreeTypeFont, text: str, scale: float) -> Piece:
    """Render ``text`` with a colour bitmap font (loaded at its strike size) and shrink it by ``scale``.

    Frames blend two colours by coverage, so colour becomes ink: opaque pixels get at least a quarter
    of full ink (the silhouette stays visible on light glyphs) and darker colours more (inner detail)."""
    bl, bt, br, bb = font.getbbox(text, anchor="ls")
    img = Image.new("RGBA", (max(1, br - bl), max(1, bb - bt)), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((-bl, -bt), text, font=font, embedded_color=True, anchor="ls")
    rgba = np.asarray(img, dtype=np.int32)
    luma = (rgba[..., 0] * 299 + rgba[..., 1] * 587 + rgba[..., 2] * 114) // 1000
    cov = (rgba[..., 3] * (1020 - 3 * luma) // 1020).astype(np.uint8)
    left, top = round(bl * scale), round(bt * scale)
    size = (max(1, round(br * scale) - left), max(1, round(bb * scale) - top))
    small = np.asarray(Image.fromarray(cov, "L").resize(size, Image.Resampling.BOX))
    return _crop(font.getlength(text) * scale, small, left, top)


def placeholder(size: int, ascent: int) -> Piece:
    """An outlined box one em wide standing on the baseline: drawn for a character no font has, so a
    reader sees that something is there (a blank would hide it)."""
    stroke = max(1, round(size / 12))
    gap = max(1, round(size / 10))  # side bearings, so neighbouring boxes stay apart
    w, h = size - 2 * gap, min(ascent, round(size * 0.8))
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[:stroke] = mask[-stroke:] = 255
    mask[:, :stroke] = mask[:, -stroke:] = 255
    return Piece(adv=float(size), left=gap, top=-h, right=gap + w, bottom=0, mask=mask)


def compose(parts: list[tuple[int, Piece]], adv: int) -> Piece:
    """One piece from pieces at pen offsets (their masks combined by maximum coverage)."""
    inked = [(x, p) for x, p in parts if p.mask is not None]
    if not inked:
        return Piece(adv=adv)
    if len(inked) == 1:
        x, p = inked[0]
        return Piece(adv=adv, left=x + p.left, top=p.top, right=x + p.right, bottom=p.bottom, mask=p.mask)
    left = min(x + p.left for x, p in inked)
    right = max(x + p.right for x, p in inked)
    top = min(p.top for _, p in inked)
    bottom = max(p.bottom for _, p in inked)
    mask = np.zeros((bottom - top, right - left), dtype=np.uint8)
    for x, p in inked:
        dst = mask[p.top - top : p.bottom - top, x + p.left - left : x + p.right - left]
        np.maximum(dst, p.mask, out=dst)
    return Piece(adv=adv, left=left, top=top, right=right, bottom=bottom, mask=mask)
