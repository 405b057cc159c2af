"""Questions about a scene, with exact answers, evidence intervals and curation ground truth.

A generator looks at the scene and returns a :class:`Draft`: the answer, a pool of wrong answers of the
same kind (drawn from the same distribution as answers, so the options leak nothing), the evidence
intervals, whether the centre frame alone shows the evidence, and pixel "checks" a test can verify on
the decoded video. :func:`finalize` turns a draft into a 4-option question with the answer at a given
position; with ``text_answerable`` the wrong options are replaced by off-topic phrases, the deliberate
bias that text-only curation must find.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sparrow.world.phrasing import phrase
from sparrow.world.render import object_pixel
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

# Wrong options for text-answerable questions: none of them can answer any question of this world, so
# a reader of the options alone picks the one of the right kind.
OFF_TOPIC: tuple[str, ...] = (
    "a piano",
    "last Tuesday",
    "in Paris",
    "by train",
    "very loudly",
    "the ocean",
    "a violin",
    "in the kitchen",
    "on Mondays",
    "a bicycle",
    "at midnight",
    "the library",
    "with a spoon",
    "a sandwich",
    "under the bridge",
    "a thunderstorm",
    "grandmother",
    "the weekend",
    "a postcard",
    "in the garden",
    "a teaspoon of sugar",
    "the mayor",
    "on the radio",
    "a pair of socks",
)

SPEED_OPTIONS = {"slowly": "slowly", "steadily": "at a steady pace", "quickly": "quickly"}
NO_MOVE = "it does not move"


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


@dataclass
class Question:
    id: str
    video_id: str
    split: str
    category: str
    subtype: str
    question: str
    template: str
    options: list[str]
    answer_index: int
    evidence: list[list[float]]
    duration: float
    fps: int
    centre_frame_suffices: bool
    text_answerable: bool
    checks: list[dict[str, Any]]
    target: str  # the object id (o0, o1, ...) or word the question is about; "shapes"/"words" for counts


# ------------------------------------------------------------------------------------ visibility / checks


def _frames_around(scene: Scene, t: float) -> list[float]:
    i = scene.frame_at(t)
    return [scene.frame_time(j) for j in (i - 1, i, i + 1) if 0 <= j < scene.num_frames]


def object_visible(scene: Scene, o: ShapeObject, t: float) -> bool:
    """Whole object in frame and its centre not covered by another object, at t and the frames next to it
    (a one-frame baseline may land a frame off the exact centre)."""
    return all(
        o.fully_visible(u, scene.size) and not scene.covered(u, *o.position(u), by_others_of=o.oid)
        for u in _frames_around(scene, t)
    )


def word_visible(scene: Scene, w: WordEvent, t: float) -> bool:
    return all(w.shown(u) for u in _frames_around(scene, t))


def colour_check(scene: Scene, o: ShapeObject) -> dict[str, Any] | None:
    """A frame where the object's centre pixel shows its colour (standing, uncovered), nearest the
    middle of its stop."""
    a, b = scene.frame_at(o.stop[0]), scene.frame_at(min(o.stop[1], scene.duration) - 1e-6)
    mid = (a + b) // 2
    for i in sorted(range(a, b + 1), key=lambda j: (abs(j - mid), j)):
        t = scene.frame_time(i)
        if object_visible(scene, o, t):
            x, y = object_pixel(o, t)
            return {"kind": "colour", "frame": i, "t": round(t, 4), "x": x, "y": y, "colour": o.colour}
    return None


def word_checks(scene: Scene, w: WordEvent) -> list[dict[str, Any]]:
    """The word's box holds text of its colour in the middle of its interval, and none when no word is
    shown (a frame outside every word interval, if there is one)."""
    i = scene.frame_at((w.start + w.end) / 2)
    out = [
        {
            "kind": "word",
            "frame": i,
            "t": round(scene.frame_time(i), 4),
            "box": list(w.box),
            "text": w.text,
            "colour": w.colour,
            "font_px": w.font_px,
            "present": True,
        }
    ]
    for j in range(0, scene.num_frames, max(1, scene.fps // 2)):
        t = scene.frame_time(j)
        if not any(v.start - 0.5 <= t < v.end + 0.5 for v in scene.words):
            out.append(
                {
                    "kind": "word",
                    "frame": j,
                    "t": round(t, 4),
                    "box": list(w.box),
                    "text": w.text,
                    "colour": w.colour,
                    "font_px": w.font_px,
                    "present": False,
                }
            )
            break
    return out


# ------------------------------------------------------------------------------------------- helpers


def _shuffled(rng: random.Random, xs) -> list:
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
    return [shape_name(c, s) for c, s in _shuffled(rng, fresh or combos)]


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


# ---------------------------------------------------------------------------------------- generators


def g_colour_of_shape(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.objects:
        return None
    large = [o for o in scene.objects if o.large]
    o = large[0] if large and rng.random() < 0.7 else rng.choice(scene.objects)
    check = colour_check(scene, o)
    if check is None:
        return None
    pool = _shuffled(rng, [c for c in COLOURS if c != o.colour])
    return Draft(
        category="perception",
        subtype="colour_of_shape",
        target=o.oid,
        slots={"shape": o.shape},
        answer=o.colour,
        pool=pool,
        evidence=[_span(o.appear, o.vanish)],
        centre_frame_suffices=object_visible(scene, o, scene.centre_time),
        checks=[check],
    )


def g_shape_of_colour(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.objects:
        return None
    o = rng.choice(scene.objects)
    check = colour_check(scene, o)
    if check is None:
        return None
    pool = _shuffled(rng, [s for s in SHAPES if s != o.shape])
    return Draft(
        category="perception",
        subtype="shape_of_colour",
        target=o.oid,
        slots={"colour": o.colour},
        answer=o.shape,
        pool=pool,
        evidence=[_span(o.appear, o.vanish)],
        centre_frame_suffices=object_visible(scene, o, scene.centre_time),
        checks=[check],
    )


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
    for t, name in _shuffled(rng, items):
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
    return Draft(
        category="temporal_localization",
        subtype="when_word",
        target=w.text,
        slots={"word": w.text},
        answer=time_range(w.start, w.end),
        pool=pool,
        evidence=[[w.start, w.end]],
        centre_frame_suffices=False,
        checks=word_checks(scene, w),
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
    return Draft(
        category="temporal_localization",
        subtype="when_still",
        target=o.oid,
        slots={"name": o.name},
        answer=time_range(t1, t2),
        pool=pool,
        evidence=[[t1, t2]],
        centre_frame_suffices=False,
        checks=[check],
    )


def g_word_seconds(scene: Scene, rng: random.Random) -> Draft | None:
    if not scene.words:
        return None
    w = rng.choice([v for v in scene.words if not v.highlighted] or scene.words)
    n = w.end - w.start
    lo, hi = (2, 6) if scene.long else (1, 4)
    values = [v for v in range(lo, max(hi, lo + NUM_OPTIONS - 1) + 1) if v != n]
    return Draft(
        category="duration_speed",
        subtype="word_seconds",
        target=w.text,
        slots={"word": w.text},
        answer=seconds_text(n),
        pool=[seconds_text(v) for v in _shuffled(rng, values)],
        evidence=[[w.start, w.end]],
        centre_frame_suffices=False,
        checks=word_checks(scene, w),
    )


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
    return Draft(
        category="duration_speed",
        subtype="still_seconds",
        target=o.oid,
        slots={"name": o.name},
        answer=seconds_text(n),
        pool=[seconds_text(v) for v in _shuffled(rng, values)],
        evidence=[[t1, t2]],
        centre_frame_suffices=False,
        checks=[check],
    )


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
    others = _shuffled(rng, [m.name for m in scene.objects if m is not o])
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
    pool = _shuffled(rng, [x for x in WORDS if x not in shown])
    return Draft(
        category="ocr",
        subtype="which_word",
        target=w.text,
        slots={},
        answer=w.text,
        pool=pool,
        evidence=[[w.start, w.end]],
        centre_frame_suffices=word_visible(scene, w, scene.centre_time),
        checks=word_checks(scene, w),
    )


def g_needle_word(scene: Scene, rng: random.Random) -> Draft | None:
    needles = [w for w in scene.words if w.highlighted]
    others = [w.text for w in scene.words if not w.highlighted]
    if len(needles) != 1 or len(others) < NUM_OPTIONS - 1:
        return None
    w = needles[0]
    return Draft(
        category="long_range",
        subtype="needle_word",
        target=w.text,
        slots={},
        answer=w.text,
        pool=_shuffled(rng, others),
        evidence=[[w.start, w.end]],
        centre_frame_suffices=word_visible(scene, w, scene.centre_time),
        checks=word_checks(scene, w),
    )


def g_last_word(scene: Scene, rng: random.Random) -> Draft | None:
    if len(scene.words) < NUM_OPTIONS:
        return None
    w = scene.words[-1]
    pool = _shuffled(rng, [v.text for v in scene.words[:-1]])
    return Draft(
        category="long_range",
        subtype="last_word",
        target=w.text,
        slots={},
        answer=w.text,
        pool=pool,
        evidence=[[w.start, w.end]],
        centre_frame_suffices=False,
        checks=word_checks(scene, w),
    )


def g_last_shape_colour(scene: Scene, rng: random.Random) -> Draft | None:
    objs = sorted(scene.objects, key=lambda o: o.appear)
    if len(objs) < 2 or objs[-1].appear - objs[-2].appear < 2.0:
        return None
    o = objs[-1]
    check = colour_check(scene, o)
    if check is None:
        return None
    in_scene = _shuffled(rng, [m.colour for m in objs[:-1]])
    rest = _shuffled(rng, [c for c in COLOURS if c != o.colour and c not in in_scene])
    return Draft(
        category="long_range",
        subtype="last_shape_colour",
        target=o.oid,
        slots={},
        answer=o.colour,
        pool=in_scene + rest,
        evidence=[_span(o.appear, o.vanish)],
        centre_frame_suffices=False,
        checks=[check],
    )


GENERATORS: dict[str, list[Callable[[Scene, random.Random], Draft | None]]] = {
    "perception": [g_colour_of_shape, g_shape_of_colour],
    "counting": [g_count_shapes, g_count_words],
    "temporal_order": [g_first_item, g_last_item],
    "temporal_localization": [g_when_word, g_when_still],
    "duration_speed": [g_word_seconds, g_still_seconds, g_speed_of_shape, g_fastest],
    "ocr": [g_which_word],
    "long_range": [g_needle_word, g_last_word, g_last_shape_colour],
}


def draft_questions(scene: Scene, n: int, weights: dict[str, float], seed: int) -> list[Draft]:
    """Up to ``n`` distinct drafts for a scene; categories drawn by weight among those that apply.
    A long video gets long-range questions first (they are what it is for)."""
    rng = random.Random(f"sparrow-world/questions/{seed}/{scene.video_id}")
    cats = [c for c in GENERATORS if weights.get(c, 0) > 0 and (c != "long_range" or scene.long)]
    out: list[Draft] = []
    seen: set[tuple[str, str]] = set()
    dead: set[str] = set()

    def attempt(cat: str) -> None:
        gens = _shuffled(rng, GENERATORS[cat])
        for g in gens:
            for _ in range(3):
                d = g(scene, rng)
                if d is not None and (d.subtype, d.target) not in seen:
                    seen.add((d.subtype, d.target))
                    out.append(d)
                    return
        dead.add(cat)

    if scene.long and "long_range" in cats:
        for _ in range(min(3, n)):
            attempt("long_range")
    for _ in range(8 * n):
        if len(out) >= n:
            break
        live = [c for c in cats if c not in dead]
        if not live:
            break
        attempt(rng.choices(live, weights=[weights[c] for c in live])[0])
    return out


def finalize(
    draft: Draft,
    qid: str,
    scene: Scene,
    answer_index: int,
    text_answerable: bool,
    phrasing: str,
) -> Question:
    """Phrase the draft and lay out 4 options with the answer at ``answer_index``."""
    rng = random.Random(f"sparrow-world/finalize/{qid}")
    text, template = phrase(draft.subtype, draft.slots, phrasing, rng)
    if text_answerable:
        wrong = rng.sample(OFF_TOPIC, NUM_OPTIONS - 1)
    else:
        wrong = [x for x in dict.fromkeys(draft.pool) if x != draft.answer][: NUM_OPTIONS - 1]
    if len(wrong) != NUM_OPTIONS - 1:
        raise ValueError(f"{qid}: not enough distinct wrong options for {draft.subtype}")
    options = list(wrong)
    options.insert(answer_index, draft.answer)
    if len(set(options)) != NUM_OPTIONS:
        raise ValueError(f"{qid}: duplicate options {options}")
    return Question(
        id=qid,
        video_id=scene.video_id,
        split=scene.split,
        category=draft.category,
        subtype=draft.subtype,
        question=text,
        template=template,
        options=options,
        answer_index=answer_index,
        evidence=draft.evidence,
        duration=float(scene.duration),
        fps=scene.fps,
        centre_frame_suffices=draft.centre_frame_suffices,
        text_answerable=text_answerable,
        checks=draft.checks,
        target=draft.target,
    )
