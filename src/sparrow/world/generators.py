"""Question generators: each looks at a scene and returns a :class:`Draft` (the answer, a pool of wrong
answers of the same kind, evidence intervals, whether the centre frame suffices, pixel checks), or None
when the scene has nothing to ask of that kind."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sparrow.world.evidence import colour_check, object_visible, word_checks, word_visible
from sparrow.world.scene import (
    MAX_LONG_WORDS,
    MAX_OBJECTS,
    MAX_SHORT_WORDS,
    MIN_LONG_WORDS,
    Scene,
    ShapeObject,
    WordEvent,
)
from sparrow.world.vocab import COLOURS, SHAPES, SPEEDS, WORDS, seconds_text, shape_name, time_range

NUM_OPTIONS = 4

SPEED_OPTIONS = {"slowly": "slowly", "steadily": "at a steady pace", "quickly": "quickly"}
NO_MOVE = "it does not move"
# Attribute asked -> (attribute that names the shape, the values the answer is drawn from).
_ATTRIBUTES = {"colour": ("shape", COLOURS), "shape": ("colour", SHAPES)}


@dataclass
class Draft:
    category: str
    subtype: str
    target: str  # what the question is about (dedupe key within a video)
    slots: dict[str, str]
    answer: str
    pool: list[str]  # wrong answers of the same kind, in preference order
    evidence: list[list[float]]
    centre_frame_suffices: bool
    checks: list[dict[str, Any]] = field(default_factory=list)


def shuffled(rng: random.Random, xs) -> list:
    xs = list(xs)
    rng.shuffle(xs)
    return xs


def _count_pool(rng: random.Random, answer: int, support: range) -> list[str]:
    """Three wrong counts drawn from the same support as the answers. With answers spread evenly over
    the support (scene plans draw counts uniformly; splits are balanced), a set of options says nothing
    about which of them is right. (A window of consecutive counts around the answer would: at the edges
    of the support the answer's rank is forced.)"""
    values = [v for v in support if v != answer]
    return [str(v) for v in rng.sample(values, NUM_OPTIONS - 1)]


def _range_pool(rng: random.Random, start: int, end: int, duration: int, margin: int = 0) -> list[str] | None:
    """Wrong time ranges of the same length: disjoint from the answer if possible, else shifted >= 2 s.
    ``margin``: keep them that far from the video's ends, where the answers themselves never are."""
    n = end - start
    lo, hi = margin, duration - n - margin
    cands = [s for s in range(lo, hi + 1) if s + n <= start or s >= end]
    if len(cands) < NUM_OPTIONS - 1:
        cands = [s for s in range(lo, hi + 1) if abs(s - start) >= 2]
    if len(cands) < NUM_OPTIONS - 1:
        return None
    return [time_range(s, s + n) for s in rng.sample(cands, NUM_OPTIONS - 1)]


def _absent_names(scene: Scene, rng: random.Random) -> list[str]:
    present = {(o.colour, o.shape) for o in scene.objects}
    used_c, used_s = {o.colour for o in scene.objects}, {o.shape for o in scene.objects}
    # Absent objects reuse neither a present colour nor a present shape, so they stay unambiguous.
    combos = [(c, s) for c in sorted(COLOURS) for s in SHAPES if (c, s) not in present]
    fresh = [cs for cs in combos if cs[0] not in used_c and cs[1] not in used_s]
    return [shape_name(c, s) for c, s in shuffled(rng, fresh or combos)]


def _move_spans(o: ShapeObject) -> list[list[float]]:
    k = o.keys
    spans = []
    if o.enter_side is not None:
        spans.append([k[0][0], k[1][0]])
    if o.exit_side is not None:
        spans.append([k[-2][0], k[-1][0]])
    return spans


def _span(a: float, b: float) -> list[float]:
    return [round(a, 3), round(b, 3)]


class _Subject(NamedTuple):
    """What a question is about: its dedupe target, its evidence and the pixel checks that verify it."""

    target: str
    evidence: list[list[float]]
    checks: list[dict[str, Any]]


def _shape_subject(o: ShapeObject, check: dict[str, Any]) -> _Subject:
    return _Subject(o.oid, [_span(o.appear, o.vanish)], [check])


def _word_subject(scene: Scene, w: WordEvent) -> _Subject:
    return _Subject(w.text, [[w.start, w.end]], word_checks(scene, w))


def _draft(
    kind: tuple[str, str],
    about: _Subject,
    answer: str,
    pool: list[str],
    slots: dict[str, str] | None = None,
    evidence: list[list[float]] | None = None,
    centre: bool = False,
) -> Draft:
    """``kind``: (category, subtype); ``evidence``, when given, replaces the subject's."""
    return Draft(
        *kind,
        target=about.target,
        slots=slots or {},
        answer=answer,
        pool=pool,
        evidence=evidence or about.evidence,
        centre_frame_suffices=centre,
        checks=about.checks,
    )


# ---------------------------------------------------------------------------------------- generators


def _g_attribute(scene: Scene, rng: random.Random, o: ShapeObject, asked: str) -> Draft | None:
    """Perception: the shape's ``asked`` attribute ("colour" or "shape"), naming it by the other one."""
    check = colour_check(scene, o)
    if check is None:
        return None
    given, values = _ATTRIBUTES[asked]
    answer = getattr(o, asked)
    pool = shuffled(rng, [v for v in values if v != answer])
    centre = object_visible(scene, o, scene.centre_time)
    kind = ("perception", f"{asked}_of_{given}")
    return _draft(
        kind, _shape_subject(o, check), answer, pool, slots={given: getattr(o, given)}, centre=centre
    )


def g_colour_of_shape(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.objects:
        return None
    large = [o for o in scene.objects if o.large]
    o = large[0] if large and rng.random() < 0.7 else rng.choice(scene.objects)
    return _g_attribute(scene, rng, o, "colour")


def g_shape_of_colour(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.objects:
        return None
    return _g_attribute(scene, rng, rng.choice(scene.objects), "shape")


def g_count_shapes(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.objects:
        return None
    checks = [c for c in (colour_check(scene, o) for o in scene.objects) if c is not None]
    centre = all(object_visible(scene, o, scene.centre_time) for o in scene.objects)
    return Draft(
        category="counting",
        subtype="count_shapes",
        target="shapes",
        slots={},
        answer=str(len(scene.objects)),
        pool=_count_pool(rng, len(scene.objects), range(1, MAX_OBJECTS + 1)),
        evidence=[_span(o.appear, o.vanish) for o in scene.objects],
        centre_frame_suffices=centre,
        checks=checks,
    )


def _word_count_support(scene: Scene, n: int) -> range:
    lo, hi = (MIN_LONG_WORDS - 2, MAX_LONG_WORDS + 1) if scene.long else (1, MAX_SHORT_WORDS)
    lo, hi = min(lo, n), max(hi, n)
    if hi - lo + 1 < NUM_OPTIONS:
        hi = lo + NUM_OPTIONS - 1
    return range(lo, hi + 1)


def g_count_words(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.words:
        return None
    n = len(scene.words)
    centre = n == 1 and word_visible(scene, scene.words[0], scene.centre_time)
    checks = [c for w in scene.words for c in word_checks(scene, w)[:1]]
    return Draft(
        category="counting",
        subtype="count_words",
        target="words",
        slots={},
        answer=str(n),
        pool=_count_pool(rng, n, _word_count_support(scene, n)),
        evidence=[[w.start, w.end] for w in scene.words],
        centre_frame_suffices=centre,
        checks=checks,
    )


def _order_items(scene: Scene, rng: random.Random, kind: str) -> list[tuple[float, str]] | None:
    """Three or four shapes, or three or four words, whose appearance times are at least 1 s apart.
    One kind per question: mixed options would let a text-only model learn that shapes tend to come
    first (they are often in view from the start) and words last."""
    if kind == "shapes":
        items = [(o.appear, o.name) for o in scene.objects]
    else:
        items = [(float(w.start), w.name) for w in scene.words]
    chosen: list[tuple[float, str]] = []
    for t, name in shuffled(rng, items):
        if all(abs(t - u) >= 1.0 for u, _ in chosen):
            chosen.append((t, name))
        if len(chosen) == NUM_OPTIONS:
            break
    return chosen if len(chosen) >= NUM_OPTIONS - 1 else None


def _g_order(scene: Scene, rng: random.Random, last: bool) -> Draft | None:
    kind = rng.choice(("shapes", "words"))
    chosen = _order_items(scene, rng, kind)
    if chosen is None:
        return None
    ordered = sorted(chosen)
    answer = ordered[-1] if last else ordered[0]
    pool = [name for _, name in chosen if name != answer[1]]
    if len(pool) < NUM_OPTIONS - 1:
        # Short videos often hold only three: the fourth option never appears (so it cannot be first or
        # last), of the same kind.
        if kind == "shapes":
            pool.append(_absent_names(scene, rng)[0])
        else:
            shown = {w.text for w in scene.words}
            pool.append("the word " + rng.choice([w for w in WORDS if w not in shown]))
    evidence = [_span(t, min(t + 1.0, scene.duration)) for t, _ in ordered]
    sub = "last_item" if last else "first_item"
    return Draft(
        category="temporal_order",
        subtype=sub,
        target=answer[1],
        slots={},
        answer=answer[1],
        pool=pool,
        evidence=evidence,
        centre_frame_suffices=False,
    )


def g_first_item(scene: Scene, rng: random.Random) -> Draft | None:
    return _g_order(scene, rng, last=False)


def g_last_item(scene: Scene, rng: random.Random) -> Draft | None:
    return _g_order(scene, rng, last=True)


def g_when_word(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.words:
        return None
    w = rng.choice(scene.words)
    pool = _range_pool(rng, w.start, w.end, scene.duration)
    if pool is None:
        return None
    answer = time_range(w.start, w.end)
    return _draft(
        ("temporal_localization", "when_word"), _word_subject(scene, w), answer, pool, {"word": w.text}
    )


def g_when_still(scene: Scene, rng: random.Random) -> Draft | None:
    # Only shapes that arrive and leave: a stop from 0 s or to the end would stand out among the options.
    movers = [o for o in scene.objects if o.enter_side is not None and o.exit_side is not None]
    if not movers:
        return None
    o = rng.choice(movers)
    t1, t2 = o.stop
    pool = _range_pool(rng, t1, t2, scene.duration, margin=1)
    check = colour_check(scene, o)
    if pool is None or check is None:
        return None
    kind = ("temporal_localization", "when_still")
    return _draft(kind, _shape_subject(o, check), time_range(t1, t2), pool, {"name": o.name}, [[t1, t2]])


def g_word_seconds(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.words:
        return None
    w = rng.choice([v for v in scene.words if not v.highlighted] or scene.words)
    n = w.end - w.start
    lo, hi = (2, 6) if scene.long else (1, 4)
    values = [v for v in range(lo, max(hi, lo + NUM_OPTIONS - 1) + 1) if v != n]
    pool = [seconds_text(v) for v in shuffled(rng, values)]
    kind = ("duration_speed", "word_seconds")
    return _draft(kind, _word_subject(scene, w), seconds_text(n), pool, {"word": w.text})


def g_still_seconds(scene: Scene, rng: random.Random) -> Draft | None:
    # Small shapes only: the large one stands for half the video or more, an answer far outside the
    # range of the other options.
    cands = [o for o in scene.objects if o.enter_side is not None and o.exit_side is not None and not o.large]
    if not cands:
        return None
    o = rng.choice(cands)
    t1, t2 = o.stop
    n = t2 - t1
    lo, hi = (3, 20) if scene.long else (1, 6)
    values = [v for v in range(lo, hi + 1) if v != n]
    check = colour_check(scene, o)
    if check is None:
        return None
    pool = [seconds_text(v) for v in shuffled(rng, values)]
    kind = ("duration_speed", "still_seconds")
    return _draft(kind, _shape_subject(o, check), seconds_text(n), pool, {"name": o.name}, [[t1, t2]])


def g_speed_of_shape(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.objects:
        return None
    o = rng.choice(scene.objects)
    answer = SPEED_OPTIONS[o.speed] if o.moves() else NO_MOVE
    pool = [x for x in [*SPEED_OPTIONS.values(), NO_MOVE] if x != answer]
    spans = _move_spans(o) or [_span(o.appear, o.vanish)]
    return Draft(
        category="duration_speed",
        subtype="speed_of_shape",
        target=o.oid,
        slots={"name": o.name},
        answer=answer,
        pool=pool,
        evidence=[_span(a, b) for a, b in spans],
        centre_frame_suffices=False,
    )


def g_fastest(scene: Scene, rng: random.Random) -> Draft | None:
    movers = [o for o in scene.objects if o.moves()]
    if len(movers) < 2:
        return None
    rank = list(SPEEDS)
    top = max(rank.index(o.speed) for o in movers)
    fastest = [o for o in movers if rank.index(o.speed) == top]
    if len(fastest) != 1:
        return None
    o = fastest[0]
    others = shuffled(rng, [m.name for m in scene.objects if m is not o])
    pool = (others + _absent_names(scene, rng))[: NUM_OPTIONS - 1]
    evidence = [_span(a, b) for m in movers for a, b in _move_spans(m)]
    return Draft(
        category="duration_speed",
        subtype="fastest",
        target=o.oid,
        slots={},
        answer=o.name,
        pool=pool,
        evidence=sorted(evidence),
        centre_frame_suffices=False,
    )


def g_which_word(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.words:
        return None
    w = rng.choice(scene.words)
    shown = {v.text for v in scene.words}
    pool = shuffled(rng, [x for x in WORDS if x not in shown])
    centre = word_visible(scene, w, scene.centre_time)
    return _draft(("ocr", "which_word"), _word_subject(scene, w), w.text, pool, centre=centre)


def g_needle_word(scene: Scene, rng: random.Random) -> Draft | None:
    needles = [w for w in scene.words if w.highlighted]
    others = [w.text for w in scene.words if not w.highlighted]
    if len(needles) != 1 or len(others) < NUM_OPTIONS - 1:
        return None
    w = needles[0]
    pool = shuffled(rng, others)
    centre = word_visible(scene, w, scene.centre_time)
    return _draft(("long_range", "needle_word"), _word_subject(scene, w), w.text, pool, centre=centre)


def g_last_word(scene: Scene, rng: random.Random) -> Draft | None:
    if len(scene.words) < NUM_OPTIONS:
        return None
    w = scene.words[-1]
    pool = shuffled(rng, [v.text for v in scene.words[:-1]])
    return _draft(("long_range", "last_word"), _word_subject(scene, w), w.text, pool)


def g_last_shape_colour(scene: Scene, rng: random.Random) -> Draft | None:
    objs = sorted(scene.objects, key=lambda o: o.appear)
    if len(objs) < 2 or objs[-1].appear - objs[-2].appear < 2.0:
        return None
    o = objs[-1]
    check = colour_check(scene, o)
    if check is None:
        return None
    in_scene = shuffled(rng, [m.colour for m in objs[:-1]])
    rest = shuffled(rng, [c for c in COLOURS if c != o.colour and c not in in_scene])
    return _draft(("long_range", "last_shape_colour"), _shape_subject(o, check), o.colour, in_scene + rest)


GENERATORS: dict[str, list[Callable[[Scene, random.Random], Draft | None]]] = {
    "perception": [g_colour_of_shape, g_shape_of_colour],
    "counting": [g_count_shapes, g_count_words],
    "temporal_order": [g_first_item, g_last_item],
    "temporal_localization": [g_when_word, g_when_still],
    "duration_speed": [g_word_seconds, g_still_seconds, g_speed_of_shape, g_fastest],
    "ocr": [g_which_word],
    "long_range": [g_needle_word, g_last_word, g_last_shape_colour],
}
