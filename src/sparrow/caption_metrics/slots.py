"""Slot accuracy in the world: does the caption matched to each ground-truth event name the right
colour, shape, word and action?

The slots of an event are read back from its ground-truth text with the world's vocabulary
(``sparrow.world.vocab``): a word event ("The word FISH is shown.") has a word and the action "shown";
a shape event has a colour, a shape and one of the actions below. A slot counts as right when the
event's matched caption (``matching.match_lines``) contains the value, or for the action one of its
phrasings; an event with no matched caption gets every slot wrong.
"""

from __future__ import annotations

from sparrow.caption_metrics.matching import MIN_F1, match_lines
from sparrow.caption_metrics.text import words
from sparrow.captions import Transcript
from sparrow.world.vocab import COLOURS, SHAPES, WORDS

SLOTS = ("colour", "shape", "word", "action")

# Action -> how the ground truth says it (first) and phrasings a caption may use instead (the
# narrator's in the world's transcripts among them).
ACTIONS: dict[str, tuple[str, ...]] = {
    "enters": ("enters", "comes in", "enter", "entering", "moves in", "appears"),
    "in view": ("is in view", "there's", "there is", "visible", "in view"),
    "stands": ("stands still", "sits there", "stands", "still", "stops", "rests"),
    "leaves": ("leaves", "goes off", "exits", "leave", "leaving", "moves out"),
    "shown": ("is shown", "it says", "shown", "appears", "displayed", "reads"),
}
_LOWER_WORDS = {w.lower() for w in WORDS}


def event_slots(text: str) -> dict[str, str]:
    """The slots of a ground-truth event text (empty when it names none of the vocabulary)."""
    toks = words(text)
    joined = " ".join(toks)
    out: dict[str, str] = {}
    word = next((t for t in toks if t in _LOWER_WORDS and t.upper() in text), None)
    if word is not None and "word" in toks:
        out["word"] = word
    else:
        colour = next((t for t in toks if t in COLOURS), None)
        shape = next((t for t in toks if t in SHAPES), None)
        if colour and shape:
            out["colour"], out["shape"] = colour, shape
    if out:
        action = next((a for a, ways in ACTIONS.items() if ways[0] in joined), None)
        if action is not None:
            out["action"] = action
    return out


def slot_right(slot: str, value: str, caption: str) -> bool:
    toks = words(caption)
    if slot != "action":
        return value in toks
    joined = f" {' '.join(toks)} "
    return any(f" {w} " in joined for w in ACTIONS[value])


def is_world_truth(truth: dict[str, Transcript]) -> bool:
    """Whether a reference is the world's ground truth: every event names the world's vocabulary (a
    caption set that merely mentions "a red circle" somewhere is not, and gets no slot report)."""
    lines = [line for t in truth.values() for line in t.lines]
    return bool(lines) and all(event_slots(line.text) for line in lines)


def slot_accuracy(
    candidates: dict[str, Transcript], truth: dict[str, Transcript], min_f1: float = MIN_F1
) -> dict[str, float | int]:
    """Share of ground-truth event slots that the matched captions get right, per slot, plus ``events``
    (events with slots). A video missing from ``candidates`` gets all its slots wrong."""
    right = dict.fromkeys(SLOTS, 0)
    total = dict.fromkeys(SLOTS, 0)
    events = 0
    for vid, ref in truth.items():
        cand = candidates.get(vid)
        cand_lines = cand.lines if cand is not None else ()
        matched = {m.ref: cand_lines[m.cand].text for m in match_lines(cand_lines, ref.lines, min_f1)}
        for j, line in enumerate(ref.lines):
            slots = event_slots(line.text)
            events += bool(slots)
            for slot, value in slots.items():
                total[slot] += 1
                right[slot] += j in matched and slot_right(slot, value, matched[j])
    out: dict[str, float | int] = {s: (right[s] / total[s] if total[s] else 0.0) for s in SLOTS}
    out["events"] = events
    return out
