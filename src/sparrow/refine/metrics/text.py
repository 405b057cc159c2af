"""The one tokenisation every caption metric uses: lower case, runs of letters, digits and apostrophes.

No external tokenizer (COCO's PTB tokenizer needs Java); punctuation is dropped, so "enters." and
"enters" are the same word.
"""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case word tokens of a caption."""
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    """Counts of the n-grams of a token list."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
