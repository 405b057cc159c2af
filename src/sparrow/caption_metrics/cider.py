"""CIDEr-D (Vedantam et al. 2015), a small implementation that needs no Java.

For n = 1..4 every text becomes a tf-idf vector of its n-grams: term frequency = the n-gram's count,
idf = log(N) - log(max(1, df)), where N is the number of items (videos) in the *reference* corpus and
df the number of items whose references contain the n-gram. The similarity of a candidate to one
reference is sum_g min(c_g, r_g) * r_g / (|c| |r|) — the ``min`` clips a candidate that repeats an
n-gram more often than the reference does — times a Gaussian length penalty
exp(-(len(c) - len(r))^2 / (2 * 6^2)) on word counts. CIDEr-D is 10 x the mean over n and over the
item's references. Tokens are :func:`words` (lower case, punctuation dropped).

With a reference corpus of one item every idf is 0 and so is every score (as in COCO's scorer).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from sparrow.caption_metrics.text import ngrams, words

ORDER = 4
SIGMA = 6.0
SCALE = 10.0

Vector = dict[tuple[str, ...], float]


class CiderD:
    """CIDEr-D scorer whose idf comes from ``references`` (item id -> reference texts)."""

    def __init__(self, references: Mapping[str, list[str]]):
        self.n_items = len(references)
        self.df: Counter[tuple[str, ...]] = Counter()
        for refs in references.values():
            seen: set[tuple[str, ...]] = set()
            for r in refs:
                toks = words(r)
                for n in range(1, ORDER + 1):
                    seen.update(ngrams(toks, n))
            self.df.update(seen)
        self.log_n = math.log(float(max(self.n_items, 1)))

    def _vectors(self, text: str) -> tuple[list[Vector], list[float], int]:
        toks = words(text)
        vecs, norms = [], []
        for n in range(1, ORDER + 1):
            v = {g: k * (self.log_n - math.log(max(1.0, self.df[g]))) for g, k in ngrams(toks, n).items()}
            vecs.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        return vecs, norms, len(toks)

    def score(self, candidate: str, refs: list[str]) -> float:
        """CIDEr-D of one candidate against its references."""
        if not refs:
            return 0.0
        cv, cn, clen = self._vectors(candidate)
        total = 0.0
        for ref in refs:
            rv, rn, rlen = self._vectors(ref)
            penalty = math.exp(-((clen - rlen) ** 2) / (2 * SIGMA**2))
            for n in range(ORDER):
                if cn[n] == 0 or rn[n] == 0:
                    continue
                dot = sum(min(x, rv[n].get(g, 0.0)) * rv[n].get(g, 0.0) for g, x in cv[n].items())
                total += penalty * dot / (cn[n] * rn[n])
        return SCALE * total / ORDER / len(refs)


def cider_d(candidates: Mapping[str, str], references: Mapping[str, list[str]]) -> dict[str, float]:
    """Per-item CIDEr-D of ``candidates`` (item id -> text; a missing item scores 0) against
    ``references``, with idf from the references."""
    scorer = CiderD(references)
    return {k: scorer.score(candidates.get(k, ""), refs) for k, refs in references.items()}
