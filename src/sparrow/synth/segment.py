"""Cutting a context into frames: word or token units, how good each cut is, and frames that fit.

Every frame's text is an exact slice of the context, at most ``units_per_frame`` units and no more
than its layout can hold; cuts prefer paragraph, then line, then sentence ends.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sparrow.render import NO_BREAK_BEFORE, Renderer, RenderError, is_cjk
from sparrow.synth.config import SynthConfig
from sparrow.synth.tokenizers import Tokenizer, load_tokenizer
from sparrow.synth.units import token_units, word_units

_SENTENCE_END = re.compile(r"[.!?。！？…][\"'”’)\]」』）]*$")


def boundary_scores(text: str, units: list[tuple[int, int]]) -> list[int]:
    """How good a cut before unit i is: 3 paragraph break, 2 line break, 1 sentence end, 0 between
    words, -1 inside a word (token units only). Index 0 is unused."""
    scores = [0] * len(units)
    for i in range(1, len(units)):
        prev_s, prev_e = units[i - 1]
        gap = text[prev_e : units[i][0]]
        if gap.count("\n") >= 2 or "\u2029" in gap:
            scores[i] = 3
        elif "\n" in gap or "\u2028" in gap:
            scores[i] = 2
        elif _SENTENCE_END.search(text[prev_s:prev_e]) and (gap or is_cjk(text[prev_e - 1])):
            scores[i] = 1
        elif text[units[i][0]] in NO_BREAK_BEFORE:
            scores[i] = -1  # never start a frame with closing punctuation
        elif gap or is_cjk(text[prev_e - 1]) or is_cjk(text[units[i][0]]):
            scores[i] = 0
        else:
            scores[i] = -1
    return scores


@dataclass
class Frame:
    """One frame's text as a slice [start, end) of the context, and its layout."""

    start: int
    end: int
    layout: Any = field(default=None, repr=False, compare=False)


def fill_frames(
    text: str,
    units: list[tuple[int, int]],
    scores: list[int],
    per_frame: int,
    layout: Callable[[str], Any],
) -> list[Frame]:
    """Cut ``text`` into consecutive frames. Each frame takes at most ``per_frame`` units and no more
    than fits on it (measured with ``layout``, a ``Renderer.layout``); it ends at the best boundary
    (paragraph > line > sentence > word) within the last quarter of what it can take, the latest on
    ties. A unit too long for a whole frame (a huge URL, text without spaces) is cut where the frame
    is full. Frames are exact slices of ``text``; what lies between two frames is whitespace."""
    frames: list[Frame] = []
    ends = [e for _, e in units]
    n, i = len(units), 0
    pos = units[0][0] if units else 0  # where the next frame starts (inside unit i after a cut)
    while i < n:
        start = max(pos, units[i][0])
        j_max = min(n, i + per_frame)
        probe = layout(text[start : ends[j_max - 1]])
        if probe.fits and j_max == n:
            frames.append(Frame(start, ends[n - 1], probe))
            break
        j, lay = _best_cut(text, ends, scores, i, j_max, start, probe, layout)
        if lay is not None and lay.fits:
            frames.append(Frame(start, ends[j - 1], lay))
            i, pos = j, ends[j - 1]
            continue
        # unit i alone is longer than a frame: fill the frame with its beginning
        cut = start + (probe.fitting_prefix() or 0)
        lay = layout(text[start:cut]) if cut > start else None
        if lay is None or not lay.fits:
            raise RenderError(
                "a frame cannot hold even one line of this text; use a smaller font or a larger frame"
            )
        frames.append(Frame(start, cut, lay))
        pos = cut
        if cut >= ends[i]:
            i += 1
    return frames


def _best_cut(
    text: str,
    ends: list[int],
    scores: list[int],
    i: int,
    j_max: int,
    start: int,
    probe: Any,
    layout: Callable[[str], Any],
) -> tuple[int, Any]:
    """Where the frame that starts at unit ``i`` ends (exclusive unit index) and its layout; the layout
    is None when not even unit ``i`` fits whole."""
    n = len(ends)
    if probe.fits:
        m = j_max - i
    else:
        cut = start + probe.fitting_prefix()
        m = bisect.bisect_right(ends, cut, i, j_max) - i  # whole units that fit
    if m < 1:
        return i, None
    lo = i + max(1, math.ceil(0.75 * m))
    j = max(range(lo, i + m + 1), key=lambda c: (scores[c] if c < n else 9, c))
    lay = probe.prefix(ends[j - 1] - start) if j < j_max or not probe.fits else probe
    lay = lay if lay is not None else layout(text[start : ends[j - 1]])
    while not lay.fits and j - 1 > i:  # only when a tall glyph shifted the lines: drop units
        j -= 1
        lay = layout(text[start : ends[j - 1]])
    return j, lay


def plan_frames(
    context: str,
    config: SynthConfig,
    renderer: Renderer | None = None,
    tokenizer: Tokenizer | None = None,
) -> list[Frame]:
    """Segment a context and cut it into frames that fit. A job passes its worker's ``renderer`` and
    ``tokenizer``; without them they are built for this call."""
    renderer = renderer if renderer is not None else Renderer(config.render)
    if config.unit == "tokens":
        tok = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer or "")
        units = token_units(context, tok)
    else:
        units = word_units(context)
    if not units:
        return []
    scores = boundary_scores(context, units)
    return fill_frames(context, units, scores, config.units_per_frame, renderer.layout)
