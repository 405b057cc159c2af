"""The one seed formula of training: every random choice of a run is seeded from a base seed and the
keys that name the choice, so no two choices share a stream by accident and each is reproducible.

    derive_seed(recipe.seed, "init")                  model weights before training
    derive_seed(recipe.seed, "stage", k, rank)        dropout masks of stage k on one process
    derive_seed(recipe.seed, "loader", k, rank)       the data loader's generator of stage k
    derive_seed(mixture.seed, "epoch", e)             the order of draws in mixture epoch e
    derive_seed(mixture.seed, "cap", label)           the records a random cap keeps of a source
"""

from __future__ import annotations

import numpy as np

_MASK64 = (1 << 64) - 1


def stable_hash(text: str) -> int:
    """32-bit FNV-1a of ``text``: the same on every run and machine (``hash()`` is salted per process)."""
    h = 2166136261
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def derive_seed(base: int, *keys: int | str) -> int:
    """A 63-bit seed (valid for numpy and torch) for the random choice that ``keys`` name under ``base``.

    Keys are mixed by numpy's SeedSequence, so nearby inputs give unrelated streams (a plain sum would
    make stage 2 of seed 0 collide with stage 1 of seed 1000)."""
    words = [int(base) & _MASK64] + [stable_hash(k) if isinstance(k, str) else int(k) & _MASK64 for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> 1)
