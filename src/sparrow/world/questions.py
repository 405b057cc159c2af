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
from dataclasses import dataclass
from typing import Any

from sparrow.world.generators import GENERATORS, NUM_OPTIONS, Draft, shuffled
from sparrow.world.phrasing import phrase
from sparrow.world.scene import Scene

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


def draft_questions(scene: Scene, n: int, weights: dict[str, float], seed: int) -> list[Draft]:
    """Up to ``n`` distinct drafts for a scene; categories drawn by weight among those that apply.
    A long video gets long-range questions first (they are what it is for)."""
    rng = random.Random(f"sparrow-world/questions/{seed}/{scene.video_id}")
    cats = [c for c in GENERATORS if weights.get(c, 0) > 0 and (c != "long_range" or scene.long)]
    out: list[Draft] = []
    seen: set[tuple[str, str]] = set()
    dead: set[str] = set()

    def attempt(cat: str) -> None:
        gens = shuffled(rng, GENERATORS[cat])
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
