"""Draw a scene's frames (numpy) and encode them to MP4 / H.264 (PyAV).

Shapes are pre-drawn once as boolean sprites and pasted per frame; words are pre-rendered once as
RGB patches. Encoding uses libx264 with one thread: deterministic bytes for the same scene, and the
parallelism comes from encoding several videos at once (one job item per video).
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sparrow.render.config import RenderError
from sparrow.render.fonts import bundled_font
from sparrow.world.scene import Scene, ShapeObject, WordEvent
from sparrow.world.vocab import COLOURS, WORD_BOX_RGB

# DejaVu Sans Bold shipped with matplotlib: always present with Sparrow's dependencies, and the same
# file on every machine, so word boxes (and hence videos) do not depend on system fonts.
WORD_FONT = "DejaVuSans-Bold.ttf"


# Cached per process because scene planning measures every word of every scene through it; a handful
# of sizes is all the world uses.
@lru_cache(maxsize=32)
def load_font(px: int) -> ImageFont.FreeTypeFont:
    """The word font at ``px`` pixels."""
    path = bundled_font(WORD_FONT)
    if path is None:  # a broken matplotlib install
        raise RenderError(f"font {WORD_FONT} not found in matplotlib's data; reinstall matplotlib")
    return ImageFont.truetype(path, px)


def measure_text(text: str, px: int) -> tuple[int, int]:
    """Width and height in pixels of the ink of ``text`` at ``px`` (what the word box must hold)."""
    x0, y0, x1, y1 = load_font(px).getbbox(text)
    return x1 - x0, y1 - y0


def shape_mask(shape: str, r: int) -> np.ndarray:
    """A (2r+1, 2r+1) boolean sprite of the shape, centred."""
    n = 2 * r + 1
    img = Image.new("L", (n, n), 0)
    d = ImageDraw.Draw(img)
    c = r
    if shape == "circle":
        d.ellipse([0, 0, n - 1, n - 1], fill=255)
    elif shape == "square":
        a = round(r * 0.85)
        d.rectangle([c - a, c - a, c + a, c + a], fill=255)
    elif shape == "triangle":
        h = r * math.sqrt(3) / 2
        d.polygon([(c, 0), (c - r, c + h), (c + r, c + h)], fill=255)
    elif shape == "diamond":
        d.polygon([(c, 0), (n - 1, c), (c, n - 1), (0, c)], fill=255)
    elif shape == "cross":
        w = max(1, round(r * 0.38))
        d.rectangle([c - w, 0, c + w, n - 1], fill=255)
        d.rectangle([0, c - w, n - 1, c + w], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(img) > 127


def word_patch(word: WordEvent) -> np.ndarray:
    """The word's box as an RGB patch: black box, anti-aliased text in the word's colour."""
    x0, y0, x1, y1 = word.box
    w, h = x1 - x0, y1 - y0
    font = load_font(word.font_px)
    bx0, by0, bx1, by1 = font.getbbox(word.text)
    alpha = Image.new("L", (w, h), 0)
    ImageDraw.Draw(alpha).text(
        ((w - (bx1 - bx0)) // 2 - bx0, (h - (by1 - by0)) // 2 - by0), word.text, fill=255, font=font
    )
    a = np.asarray(alpha, dtype=np.float32)[..., None] / 255.0
    fg = np.array(COLOURS[word.colour], dtype=np.float32)
    bg = np.array(WORD_BOX_RGB, dtype=np.float32)
    return np.rint(bg * (1 - a) + fg * a).astype(np.uint8)


def _paste(frame: np.ndarray, mask: np.ndarray, colour: np.ndarray, cx: int, cy: int) -> None:
    r = mask.shape[0] // 2
    H, W = frame.shape[:2]
    x0, y0 = cx - r, cy - r
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(W, x0 + mask.shape[1]), min(H, y0 + mask.shape[0])
    if fx0 >= fx1 or fy0 >= fy1:
        return
    m = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    frame[fy0:fy1, fx0:fx1][m] = colour


class SceneRenderer:
    """Renders frame i of a scene. Objects are drawn in plan order (the large one first, underneath),
    words last, on top."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.masks = {o.oid: shape_mask(o.shape, o.radius) for o in scene.objects}
        self.colours = {o.oid: np.array(COLOURS[o.colour], dtype=np.uint8) for o in scene.objects}
        self.patches = [word_patch(w) for w in scene.words]
        self.base = np.empty((scene.size, scene.size, 3), dtype=np.uint8)
        self.base[:] = np.array(scene.background, dtype=np.uint8)

    def frame(self, i: int) -> np.ndarray:
        s = self.scene
        t = s.frame_time(i)
        f = self.base.copy()
        for o in s.objects:
            p = o.position(t)
            if p is not None:
                _paste(f, self.masks[o.oid], self.colours[o.oid], _round(p[0]), _round(p[1]))
        for w, patch in zip(s.words, self.patches, strict=True):
            if w.shown(t):
                x0, y0, x1, y1 = w.box
                f[y0:y1, x0:x1] = patch
        return f


def _round(v: float) -> int:
    return int(math.floor(v + 0.5))


def object_pixel(o: ShapeObject, t: float) -> tuple[int, int] | None:
    """The pixel the renderer puts the object's centre on at time t."""
    p = o.position(t)
    return None if p is None else (_round(p[0]), _round(p[1]))


def encode_scene(
    scene: Scene, path: str | os.PathLike, crf: int = 20, gop_seconds: float = 2.0, preset: str = "ultrafast"
) -> int:
    """Render and encode a scene to ``path`` (written to a temp name, then renamed). Returns bytes."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    renderer = SceneRenderer(scene)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(scene.fps))
            stream.width = stream.height = scene.size
            stream.pix_fmt = "yuv420p"
            # ultrafast: ~2x the speed of veryfast; at 128 px and crf 20 colours and text stay clean.
            stream.options = {"crf": str(crf), "preset": preset}
            stream.codec_context.thread_count = 1  # deterministic bytes; parallelism is per video
            stream.codec_context.gop_size = max(1, round(gop_seconds * scene.fps))
            prev_key, vf = None, None
            for i in range(scene.num_frames):
                key = _frame_key(scene, i)
                if key != prev_key:  # stills are common: convert a frame only when something changed
                    vf = av.VideoFrame.from_ndarray(renderer.frame(i), format="rgb24")
                    prev_key = key
                vf.pts = i
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def _frame_key(scene: Scene, i: int) -> tuple:
    """What frame i shows, to reuse the previous frame's pixels when nothing moved (stills are common)."""
    t = scene.frame_time(i)
    pos = tuple(object_pixel(o, t) for o in scene.objects)
    shown = tuple(w.shown(t) for w in scene.words)
    return pos, shown
