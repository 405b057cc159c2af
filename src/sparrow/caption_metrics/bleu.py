"""BLEU-4 (Papineni et al. 2002) and self-BLEU, on :func:`words` tokens.

Corpus BLEU sums clipped n-gram matches and candidate n-gram counts over all segments, uses the
reference length closest to each candidate for the brevity penalty (as COCO's scorer does) and is 0 when
any n-gram order has no match. Sentence BLEU (used by self-BLEU, where single short sentences are the
norm) adds one to the numerator and denominator of orders 2-4 (Lin and Och 2004, "smoothing 2"), so one
missing 4-gram does not zero the score.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from sparrow.caption_metrics.text import ngrams, words

ORDER = 4


def _stats(cand: list[str], refs: list[list[str]]) -> tuple[list[int], list[int], int, int]:
    """Clipped matches and candidate n-gram totals per order, candidate length, closest reference length."""
    matches, totals = [], []
    for n in range(1, ORDER + 1):
        c = ngrams(cand, n)
        most: Counter[tuple[str, ...]] = Counter()
        for r in refs:
            most |= ngrams(r, n)  # element-wise max: a candidate n-gram is clipped by its most frequent use
        matches.append(sum(min(k, most[g]) for g, k in c.items()))
        totals.append(max(len(cand) - n + 1, 0))
    ref_len = min((len(r) for r in refs), key=lambda n: (abs(n - len(cand)), n), default=0)
    return matches, totals, len(cand), ref_len


def _combine(matches: list[int], totals: list[int], cand_len: int, ref_len: int, smooth: bool) -> float:
    if cand_len == 0:
        return 0.0
    logs = []
    for n, (m, t) in enumerate(zip(matches, totals, strict=True), 1):
        if smooth and n > 1:
            m, t = m + 1, t + 1
        if m == 0 or t == 0:
            return 0.0
        logs.append(math.log(m / t))
    bp = 1.0 if cand_len > ref_len else math.exp(1.0 - ref_len / cand_len)
    return bp * math.exp(sum(logs) / ORDER)


def corpus_bleu(candidates: list[str], references: list[list[str]]) -> float:
    """BLEU-4 of candidate segments, each against its list of references (0..1)."""
    m_sum, t_sum, c_len, r_len = [0] * ORDER, [0] * ORDER, 0, 0
    for cand, refs in zip(candidates, references, strict=True):
        m, t, c, r = _stats(words(cand), [words(x) for x in refs])
        m_sum = [a + b for a, b in zip(m_sum, m, strict=True)]
        t_sum = [a + b for a, b in zip(t_sum, t, strict=True)]
        c_len, r_len = c_len + c, r_len + r
    return _combine(m_sum, t_sum, c_len, r_len, smooth=False)


def sentence_bleu(candidate: str, references: list[str]) -> float:
    """Smoothed BLEU-4 of one sentence (see the module note)."""
    m, t, c, r = _stats(words(candidate), [words(x) for x in references])
    return _combine(m, t, c, r, smooth=True)


def self_bleu(texts: list[str], sample: int = 200, seed: int = 0) -> float:
    """Mean sentence BLEU-4 of each caption against all the others, on a seeded sample of at most
    ``sample`` captions (quadratic cost). High: the captions repeat each other; low: diverse."""
    pool = list(texts)
    if len(pool) > sample:
        pool = random.Random(seed).sample(pool, sample)
    if len(pool) < 2:
        return 0.0
    scores = [sentence_bleu(t, pool[:i] + pool[i + 1 :]) for i, t in enumerate(pool)]
    return sum(scores) / len(scores)
