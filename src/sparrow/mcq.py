"""The one multiple-choice prompt format shared by the world generator, training and evaluation.

Training samples and benchmark questions must be phrased identically, or a model trained on one is
scored on another. The answer target is ``"B. red"``: the letter first (what log-likelihood scoring
reads), then the option text (what generation parsing can fall back on).
"""

from __future__ import annotations

import string

LETTERS = string.ascii_uppercase
ANSWER_INSTRUCTION = "Answer with the option's letter from the given choices directly."


def option_letter(index: int) -> str:
    if not 0 <= index < len(LETTERS):
        raise ValueError(f"option index {index} out of range")
    return LETTERS[index]


def letter_index(letter: str) -> int:
    letter = letter.strip().upper()
    if len(letter) != 1 or letter not in LETTERS:
        raise ValueError(f"not an option letter: {letter!r}")
    return LETTERS.index(letter)


def format_mcq_prompt(question: str, options: list[str]) -> str:
    """``question`` then one ``A. option`` line per option, then the answer instruction."""
    if len(options) < 2:
        raise ValueError("a multiple-choice question needs at least two options")
    lines = [question.strip()]
    lines += [f"{option_letter(i)}. {opt}" for i, opt in enumerate(options)]
    lines.append(ANSWER_INSTRUCTION)
    return "\n".join(lines)


def format_mcq_answer(options: list[str], answer_index: int) -> str:
    return f"{option_letter(answer_index)}. {options[answer_index]}"
