"""The one tokenisation every caption metric uses: lower case, runs of letters, digits and apostrophes;
in scripts written without spaces (Chinese, Japanese, Thai, ...) each character is a token, as caption
metrics for Chinese count them (no segmenter needed, and a caption scored against itself scores as one).

No external tokenizer (COCO's PTB tokenizer needs Java); punctuation is dropped, so "enters." and
"enters" are the same word.
"""

from __future__ import annotations

import re
from collections import Counter

# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, kana, bopomofo, CJK
# ideographs (with extensions and compatibility forms). Hangul is written with spaces and stays in words.
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f\u31a0-\u31bf"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)
_WORD = re.compile(rf"[{_UNSPACED}]|(?:(?![{_UNSPACED}])[^\W_]|')+")


def words(text: str) -> list[str]:
    """Lower-case word tokens of a caption (one per character in unspaced scripts)."""
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    """Counts of the n-grams of a token list."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def word_pairs(text: str) -> set[tuple[str, str]]:
    """The adjacent word pairs of a text (how alike two lines read beyond shared words)."""
    w = words(text)
    return set(zip(w, w[1:], strict=False))
