"""Transcripts of a scene: exact time-aligned event descriptions (ground truth) and ASR-like noisy
versions in HowTo100M's ``caption.json`` layout (``{video_id: {"start": [..], "end": [..], "text": [..]}}``,
seconds), the input of caption refinement and of noise-robust (TaiLr) training.

Noise, each applied to a line with probability ``rate``: a wrong word (colour, shape or written word
swapped), shifted times (1–4 s), a dropped line; and off-topic chatter lines inserted between events
at the same rate. Every corruption is logged so refinement can be scored against the truth.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from sparrow.world.scene import Scene
from sparrow.world.vocab import COLOURS, SHAPES, WORDS, article, mmss

NOISE_KINDS = ("wrong_word", "shift", "drop")

CHATTER: tuple[str, ...] = (
    "um okay so",
    "don't forget to like and subscribe",
    "let me just check the light here",
    "alright where was i",
    "yeah so basically",
    "hold on one second",
    "i think the sound is a bit off",
    "you can see that in the background",
    "thanks for watching everybody",
    "so yeah that's that",
    "my cat keeps walking over the keyboard",
    "okay let's keep going",
)


@dataclass
class Event:
    start: float
    end: float
    text: str  # written, present tense, one action
    spoken: str  # how a narrator would say it (lower case, no punctuation)
    slots: dict[str, str]


def scene_events(scene: Scene) -> list[Event]:
    """One event per action, sorted by start time: shapes entering, standing, leaving; words shown."""
    ev: list[Event] = []
    for o in scene.objects:
        c, s, a = o.colour, o.shape, article(o.colour).capitalize()
        slots = {"colour": c, "shape": s}
        k = o.keys
        if o.enter_side is None:
            ev.append(
                Event(
                    0.0,
                    float(o.stop[0]) or 1.0,
                    f"{a} {c} {s} is in view.",
                    f"there's {a.lower()} {c} {s}",
                    slots,
                )
            )
        else:
            ev.append(
                Event(
                    k[0][0],
                    k[1][0],
                    f"{a} {c} {s} enters from the {o.enter_side}, moving {o.speed}.",
                    f"{a.lower()} {c} {s} comes in from the {o.enter_side}",
                    slots,
                )
            )
        t1, t2 = o.stop
        ev.append(
            Event(float(t1), float(t2), f"The {c} {s} stands still.", f"the {c} {s} just sits there", slots)
        )
        if o.exit_side is not None:
            ev.append(
                Event(
                    k[-2][0],
                    k[-1][0],
                    f"The {c} {s} leaves to the {o.exit_side}.",
                    f"and the {c} {s} goes off to the {o.exit_side}",
                    slots,
                )
            )
    for w in scene.words:
        how = " in yellow letters" if w.highlighted else ""
        ev.append(
            Event(
                float(w.start),
                float(w.end),
                f"The word {w.text} is shown{how}.",
                f"it says {w.text.lower()}{how}",
                {"word": w.text},
            )
        )
    ev.sort(key=lambda e: (e.start, e.end, e.text))
    for e in ev:
        e.start, e.end = round(e.start, 2), round(e.end, 2)
    return ev


def ground_truth(scene: Scene) -> dict[str, list]:
    ev = scene_events(scene)
    return {"start": [e.start for e in ev], "end": [e.end for e in ev], "text": [e.text for e in ev]}


def caption_lines(scene: Scene) -> list[str]:
    """``MM:SS-MM:SS: text`` per event: the timestamped dense caption of a video. Ranges cover the
    event in whole seconds (start floored, end ceiled), so a brief event never reads ``00:05-00:05``."""
    out = []
    for e in scene_events(scene):
        start = math.floor(e.start)
        end = max(start + 1, math.ceil(e.end - 1e-6))
        out.append(f"{mmss(start)}-{mmss(end)}: {e.text}")
    return out


def _swap(e: Event, rng: random.Random) -> str:
    key = rng.choice(sorted(e.slots))
    old = e.slots[key]
    if key == "colour":
        new = rng.choice([c for c in COLOURS if c != old])
    elif key == "shape":
        new = rng.choice([s for s in SHAPES if s != old])
    else:
        new = rng.choice([w for w in WORDS if w != old])
        old, new = old.lower(), new.lower()
    return e.spoken.replace(old, new, 1)


def noisy_transcript(scene: Scene, rate: float, seed: int) -> tuple[dict[str, list], list[dict[str, Any]]]:
    """ASR-like transcript of the scene and the log of corruptions: ``{"index": output line or None
    for a dropped line, "kind", "truth": the ground-truth text or None for chatter}``."""
    rng = random.Random(f"sparrow-world/asr/{seed}/{scene.video_id}")
    lines: list[
        tuple[float, float, int, str, str | None, str | None]
    ] = []  # start, end, seq, text, kind, truth
    dropped: list[dict[str, Any]] = []
    for seq, e in enumerate(scene_events(scene)):
        # Chatter is decided first, so dropping a line does not change how much chatter there is.
        if rng.random() < rate:
            t = round(rng.uniform(e.start, e.end + 1.0), 2)
            lines.append(
                (t, round(t + rng.uniform(1.0, 3.0), 2), 2 * seq + 1, rng.choice(CHATTER), "chatter", None)
            )
        start, end, text, kind = e.start, e.end, e.spoken, None
        if rng.random() < rate:
            kind = rng.choice(NOISE_KINDS)
            if kind == "drop":
                dropped.append({"index": None, "kind": "drop", "truth": e.text})
                continue
            if kind == "wrong_word":
                text = _swap(e, rng)
            else:
                d = rng.choice((-1, 1)) * rng.uniform(1.0, 4.0)
                start, end = max(0.0, start + d), max(0.0, end + d)
        lines.append((round(start, 2), round(max(end, start + 0.5), 2), 2 * seq, text, kind, e.text))
    lines.sort(key=lambda x: (x[0], x[2]))
    caption = {"start": [x[0] for x in lines], "end": [x[1] for x in lines], "text": [x[3] for x in lines]}
    log = [{"index": i, "kind": x[4], "truth": x[5]} for i, x in enumerate(lines) if x[4] is not None]
    return caption, log + dropped
