"""Real-looking text for the synth tests: sentences, paragraphs, a list, a URL and an over-long word."""

from __future__ import annotations

import random

VOCAB = (
    "the river station measured flow and oxygen every fifteen minutes while volunteers checked sensors "
    "calibration drift remained small but storms raised turbidity sharply near the weir downstream "
    "don't can't it's we'll O'Neill's well-known state-of-the-art 3.14159 1,234,567 42% $19.99 (see note) "
    "[draft] {config} e-mail: ops@example.org"
)
WORDS = VOCAB.split()


def make_text(rng: random.Random, n_words: int) -> str:
    """Real-looking text: sentences, paragraphs, a list, a URL and an over-long word."""
    out: list[str] = []
    for i in range(n_words):
        w = rng.choice(WORDS)
        if i and rng.random() < 0.08:
            w += "."
        out.append(w)
        if rng.random() < 0.03:
            out.append("\n\n")
        elif rng.random() < 0.02:
            out.append(f"\n- item {i}:")
    out.insert(len(out) // 3, "https://data.example.org/a/very/long/path/" + "segment/" * 12 + "?q=1&r=2")
    out.insert(len(out) // 2, "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3)
    text = ""
    for w in out:
        text += w if (w.startswith("\n") or not text or text.endswith("\n")) else " " + w
    return text
