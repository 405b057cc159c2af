"""Diversity of a caption set: vocabulary, distinct-n, and the Vendi score of sentence embeddings."""

from __future__ import annotations

import random
from typing import Any

from sparrow.caption_metrics.text import ngrams, words


def distinct(texts: list[str], n: int) -> float:
    """Distinct-n: unique n-grams over all n-grams of all captions (Li et al. 2016)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for t in texts:
        grams = ngrams(words(t), n)
        seen.update(grams)
        total += sum(grams.values())
    return len(seen) / total if total else 0.0


def vocabulary(texts: list[str]) -> int:
    return len({w for t in texts for w in words(t)})


def vendi(texts: list[str], encoder: Any, sample: int = 1000, seed: int = 0) -> float:
    """Vendi score (effective number of distinct captions) of the encoder's embeddings of a seeded sample
    of at most ``sample`` captions; the encoder is a loaded sentence-transformers model
    (``sparrow.diversity.load_encoder``, the packaged MiniLM by default)."""
    from sparrow.diversity import embed, vendi_score

    pool = list(texts)
    if len(pool) > sample:
        pool = random.Random(seed).sample(pool, sample)
    if not pool:
        return 0.0
    return vendi_score(embed(pool, encoder))
