"""The scene model: what is on screen when. A scene is planned from a seed (pure Python, cheap) and
everything else — frames, questions, transcripts — is derived from it, so the ground truth of every
question is exact by construction.

Geometry: a square frame of ``size`` pixels. Words appear in a band at the top (``band`` px), on a black
box; shapes move in the area below it, entering and leaving through the left / right edges. Times are in
seconds from the first frame; frame ``i`` shows time ``i / fps``. Word intervals, stop intervals and
video durations are whole seconds, so "how many seconds" questions have exact answers.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from sparrow.world.vocab import COLOURS, HIGHLIGHT_COLOUR, SHAPES, SPEEDS, WORD_COLOUR, WORDS, shape_name


@dataclass
class ShapeObject:
    """A coloured shape with a piecewise-linear path: enter → stop → (leave). ``keys`` are (t, x, y);
    the object exists from ``keys[0][0]`` to ``keys[-1][0]``; outside that it is not drawn."""

    oid: str
    shape: str
    colour: str
    radius: int
    large: bool
    speed: str  # key of SPEEDS
    enter_side: str | None  # None: already in view at t = 0
    exit_side: str | None  # None: stays until the end
    stop: tuple[int, int]  # whole seconds [arrive, depart) standing still
    keys: list[tuple[float, float, float]]

    @property
    def name(self) -> str:
        return shape_name(self.colour, self.shape)

    @property
    def appear(self) -> float:
        return self.keys[0][0]

    @property
    def vanish(self) -> float:
        return self.keys[-1][0]

    def position(self, t: float) -> tuple[float, float] | None:
        """Centre at time t, or None when the object does not exist then."""
        k = self.keys
        if t < k[0][0] or t > k[-1][0]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(k, k[1:], strict=False):
            if t0 <= t <= t1:
                a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + a * (x1 - x0), y0 + a * (y1 - y0)
        return k[-1][1], k[-1][2]

    def fully_visible(self, t: float, size: int) -> bool:
        p = self.position(t)
        return p is not None and self.radius <= p[0] <= size - 1 - self.radius

    def moves(self) -> bool:
        return self.enter_side is not None or self.exit_side is not None


@dataclass
class WordEvent:
    """A word shown in the top band from ``start`` to ``end`` (whole seconds, end exclusive)."""

    text: str
    start: int
    end: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the black box (inclusive-exclusive)
    colour: str = WORD_COLOUR
    font_px: int = 24

    @property
    def highlighted(self) -> bool:
        return self.colour != WORD_COLOUR

    def shown(self, t: float) -> bool:
        return self.start <= t < self.end

    @property
    def name(self) -> str:
        return f"the word {self.text}"


@dataclass
class Scene:
    video_id: str
    split: str
    fps: int
    duration: int  # seconds; the video has duration * fps frames
    size: int
    band: int
    background: tuple[int, int, int]
    objects: list[ShapeObject] = field(default_factory=list)
    words: list[WordEvent] = field(default_factory=list)
    long: bool = False

    @property
    def num_frames(self) -> int:
        return self.duration * self.fps

    @property
    def centre_time(self) -> float:
        """Time of the centre frame (index num_frames // 2), what a one-frame baseline looks at."""
        return (self.num_frames // 2) / self.fps

    def frame_time(self, i: int) -> float:
        return i / self.fps

    def frame_at(self, t: float) -> int:
        return min(self.num_frames - 1, max(0, int(math.floor(t * self.fps + 1e-9))))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        objs = [
            ShapeObject(**{**o, "stop": tuple(o["stop"]), "keys": [tuple(k) for k in o["keys"]]})
            for o in d["objects"]
        ]
        words = [WordEvent(**{**w, "box": tuple(w["box"])}) for w in d["words"]]
        rest = {k: v for k, v in d.items() if k not in ("objects", "words")}
        rest["background"] = tuple(rest["background"])
        return cls(**rest, objects=objs, words=words)

    def covered(self, t: float, x: float, y: float, by_others_of: str) -> bool:
        """Whether another object may cover point (x, y) at time t (conservative: its bounding circle)."""
        for o in self.objects:
            if o.oid == by_others_of:
                continue
            p = o.position(t)
            if p is not None and math.hypot(p[0] - x, p[1] - y) <= o.radius * 1.5 + 2:
                return True
        return False

    def items(self) -> list[tuple[float, str]]:
        """(appearance time, name) of every object and word: the events of order questions."""
        out = [(o.appear, o.name) for o in self.objects] + [(float(w.start), w.name) for w in self.words]
        return sorted(out)


# ------------------------------------------------------------------------------------------ planning


MAX_SHORT_WORDS = 5
MIN_LONG_WORDS, MAX_LONG_WORDS = 6, 12
MAX_OBJECTS = 5


def _fit_spans(
    rng: random.Random, duration: int, n: int, lo: tuple[int, int], gap: tuple[int, int]
) -> list[tuple[int, int]]:
    """``n`` whole-second intervals (lengths in ``lo``, gaps in ``gap``) fitted into ``duration``:
    the longest lengths / gaps shrink first, words are dropped only if even minimal ones do not fit."""
    while n > 0:
        ds = [rng.randint(*lo) for _ in range(n)]
        gs = [rng.randint(*gap) for _ in range(n + 1)]
        gs[0] = rng.randint(0, gap[1])  # the first word may start at 0 s
        gs[-1] = 0
        while sum(ds) + sum(gs) > duration:
            i_d = max(range(n), key=lambda i: ds[i])
            i_g = max(range(n), key=lambda i: gs[i] - (gap[0] if i else 0))
            if gs[i_g] > (gap[0] if i_g else 0) and (gs[i_g] >= ds[i_d] or ds[i_d] <= lo[0]):
                gs[i_g] -= 1
            elif ds[i_d] > lo[0]:
                ds[i_d] -= 1
            else:
                break
        if sum(ds) + sum(gs) <= duration:
            gs[-1] = duration - sum(ds) - sum(gs)  # slack at the end, then spread it at random
            for _ in range(gs[-1]):
                gs[rng.randrange(n + 1)] += 1
                gs[-1] -= 1
            spans, t = [], 0
            for d, g in zip(ds, gs, strict=False):
                t += g
                spans.append((t, t + d))
                t += d
            return spans
        n -= 1
    return []


def _plan_words(
    rng: random.Random, duration: int, long: bool, size: int, band: int, measure
) -> list[WordEvent]:
    """Non-overlapping word intervals with gaps; a long video gets one highlighted "needle" word deep in
    it (first or last third, never near the centre) for long-range questions."""
    texts = rng.sample(WORDS, len(WORDS))
    font_px = max(8, round(size * 0.19))
    # The number of words is drawn first (uniformly) and the intervals are fitted to it, so word counts
    # are spread evenly and "how many words" has no favourite answer a text-only model could learn.
    if long:
        n, lo, hi, gap = rng.randint(MIN_LONG_WORDS, MAX_LONG_WORDS), (2, 6), (3, 14), 3
    else:
        n, lo, hi, gap = rng.randint(1, MAX_SHORT_WORDS), (1, 4), (1, 4), 1
    spans = _fit_spans(rng, duration, n, lo, hi)
    needle = -1
    if long:
        # Rebuild around a needle: pick a time deep in the video, away from the centre, and clear it.
        d = rng.randint(2, 3)
        first = rng.random() < 0.5
        a, b = (0.08, 0.3) if first else (0.7, 0.92)
        s = rng.randint(int(duration * a), max(int(duration * a), int(duration * b) - d))
        spans = [sp for sp in spans if sp[1] + gap <= s or sp[0] >= s + d + gap]
        spans.append((s, s + d))
        spans.sort()
        needle = spans.index((s, s + d))
    words = []
    for i, (s, e) in enumerate(spans):
        text = texts[i % len(texts)]
        w, h = measure(text, font_px)
        pad = max(2, font_px // 6)
        bw, bh = w + 2 * pad, h + 2 * pad
        x0 = rng.randint(2, max(2, size - 2 - bw))
        y0 = rng.randint(1, max(1, band - bh - 1))
        colour = HIGHLIGHT_COLOUR if i == needle else WORD_COLOUR
        words.append(WordEvent(text, s, e, (x0, y0, x0 + bw, y0 + bh), colour, font_px))
    return words


def _plan_object(
    rng: random.Random,
    oid: str,
    shape: str,
    colour: str,
    large: bool,
    scene: Scene,
    placed: list[ShapeObject],
) -> ShapeObject | None:
    size, duration = scene.size, scene.duration
    r = round(size * (rng.uniform(0.17, 0.21) if large else rng.uniform(0.09, 0.12)))
    ylo, yhi = scene.band + r, size - 1 - r
    speed = rng.choice(list(SPEEDS))
    v = SPEEDS[speed] * size / 128
    for _ in range(200):
        xs, ys = rng.uniform(r, size - 1 - r), rng.uniform(ylo, yhi)
        present = large and rng.random() < 0.5 or duration <= 5 and rng.random() < 0.5
        enter = None if present else rng.choice(("left", "right"))
        leaves = rng.random() < (0.35 if large else 0.75)
        exit_ = rng.choice(("left", "right")) if leaves else None
        if large:
            d = rng.randint(max(1, duration // 2), duration)
        else:
            d = rng.randint(1, 6) if not scene.long else rng.randint(3, 20)
        if enter is None:
            t1, t_in = 0, 0.0
            x_in = y_in = None
        else:
            x_in, y_in = (-r if enter == "left" else size - 1 + r), rng.uniform(ylo, yhi)
            t_in = math.hypot(xs - x_in, ys - y_in) / v
        if exit_ is not None:
            x_out, y_out = (-r if exit_ == "left" else size - 1 + r), rng.uniform(ylo, yhi)
            t_out = math.hypot(xs - x_out, ys - y_out) / v
        else:
            x_out = y_out = None
            t_out = 0.0
        if enter is not None:
            lo = math.ceil(t_in)
            hi = duration - d - math.ceil(t_out)
            if large:
                hi = min(hi, max(lo, int(duration * 0.3)))  # the large shape is on screen most of the time
            if hi < lo:
                continue
            t1 = rng.randint(lo, hi)
        t2 = t1 + d
        if exit_ is None or t2 + t_out > duration:
            exit_, t2 = None, duration  # stays still to the end
        if any(_clash(o, xs, ys, r, t1, t2) for o in placed):
            continue
        keys: list[tuple[float, float, float]] = []
        if enter is not None:
            keys.append((round(t1 - t_in, 4), x_in, y_in))
        keys += [(float(t1), xs, ys), (float(t2), xs, ys)]
        if exit_ is not None:
            keys.append((round(t2 + t_out, 4), x_out, y_out))
        keys = [(t, round(x, 3), round(y, 3)) for t, x, y in keys]
        return ShapeObject(oid, shape, colour, r, large, speed, enter, exit_, (t1, t2), keys)
    return None


def _clash(o: ShapeObject, x: float, y: float, r: int, t1: int, t2: int) -> bool:
    """Two standing objects must not overlap while both stand (moving ones may pass over)."""
    if o.stop[1] <= t1 or t2 <= o.stop[0]:
        return False
    ox, oy = o.keys[1][1:] if o.enter_side else o.keys[0][1:]
    return math.hypot(ox - x, oy - y) < (o.radius + r) * 1.25 + 2


def plan_scene(video_id: str, split: str, long: bool, cfg, seed: int, measure) -> Scene:
    """Plan one scene deterministically from (seed, video_id). ``measure(text, px) -> (w, h)`` gives
    the pixel size of a word (from the renderer's font), so boxes fit their text exactly."""
    rng = random.Random(f"sparrow-world/scene/{seed}/{video_id}")
    if long:
        duration = rng.randint(*cfg.long_seconds)
        fps = rng.choice(cfg.long_fps_choices)
    else:
        duration = rng.randint(*cfg.short_seconds)
        fps = rng.choice(cfg.fps_choices)
    size = cfg.size
    band = round(size * 0.3)
    g = rng.randint(18, 48)
    background = (g, g, g + rng.randint(0, 12))
    scene = Scene(video_id, split, fps, duration, size, band, background, long=long)
    n_obj = rng.randint(1, MAX_OBJECTS)  # uniform: "how many shapes" has no favourite answer
    shapes = rng.sample(SHAPES, n_obj)
    colours = rng.sample(sorted(COLOURS), n_obj)
    for i in range(n_obj):
        o = _plan_object(rng, f"o{i}", shapes[i], colours[i], i == 0, scene, scene.objects)
        if o is not None:
            scene.objects.append(o)
    scene.words = _plan_words(rng, duration, long, size, band, measure)
    return scene
