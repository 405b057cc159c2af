"""Pairing the captions of a video with its reference captions, one to one, by wording.

Similarity is the unigram F1 of :func:`words` (multiset overlap). Pairs are taken greedily by falling
similarity (ties: smaller start-time gap, then file order) and kept only at or above ``min_f1``, so a
chatter line never pairs with an event. The start-time gap of the kept pairs is the "time offset of
matched captions"; slot accuracy reads the matched caption of each reference event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sparrow.caption_metrics.text import words
from sparrow.captions import Line

MIN_F1 = 0.5


@dataclass(frozen=True)
class Match:
    cand: int  # index into the candidate lines
    ref: int  # index into the reference lines
    f1: float
    offset: float  # |candidate start - reference start|, seconds


def unigram_f1(a: list[str], b: list[str]) -> float:
    if not a or not b:
        return 0.0
    common = sum((Counter(a) & Counter(b)).values())
    return 2.0 * common / (len(a) + len(b))


def match_lines(cands: tuple[Line, ...], refs: tuple[Line, ...], min_f1: float = MIN_F1) -> list[Match]:
    """Greedy one-to-one matches, sorted by reference index."""
    cw = [words(c.text) for c in cands]
    rw = [words(r.text) for r in refs]
    pairs = []
    for i, c in enumerate(cands):
        for j, r in enumerate(refs):
            f1 = unigram_f1(cw[i], rw[j])
            if f1 >= min_f1 and f1 > 0:
                pairs.append((-f1, abs(c.start - r.start), i, j))
    pairs.sort()
    used_c: set[int] = set()
    used_r: set[int] = set()
    out = []
    for neg_f1, gap, i, j in pairs:
        if i in used_c or j in used_r:
            continue
        used_c.add(i)
        used_r.add(j)
        out.append(Match(i, j, -neg_f1, gap))
    return sorted(out, key=lambda m: m.ref)
