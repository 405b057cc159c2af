"""Which answer tokens only the video can predict: the "visual terms" behind the training loss split.

A run whose answers are mostly templates ("The video shows a ... moving ...") can drive its loss down
without ever looking at the frames. Splitting the loss into the tokens that name what is seen (colours,
shapes, words, counts, time slots) and the rest shows whether a run learns to see or learns templates.

``VisualTerms`` names those tokens: literal ``terms`` (whole words or their plurals, any case) and regular expression
``patterns``. A token of an assistant reply is *visual* when its characters overlap a match. Only
records with media count (a text-only record's answer cannot come from a video), and ``sources``
narrows that to records whose ``source`` starts with one of the given prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sparrow.model.errors import ConfigError

# Counts ("3") and time slots ("00:04-00:08"): the digits are what the video decides.
WORLD_PATTERNS: tuple[str, ...] = (r"\d+",)
WORLD_SOURCES: tuple[str, ...] = ("world",)


def world_vocabulary() -> tuple[str, ...]:
    """The procedural world's colours, shapes and words (``sparrow.world.vocab``)."""
    from sparrow.world.vocab import COLOURS, SHAPES, WORDS

    return (*COLOURS, *SHAPES, *WORDS)


@dataclass(frozen=True)
class VisualTerms:
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    sources: tuple[str, ...] | None = None  # record source prefixes; None: every record with media

    @classmethod
    def world(cls, sources: tuple[str, ...] | None = None) -> VisualTerms:
        """The world's vocabulary plus counts and time slots."""
        return cls(world_vocabulary(), WORLD_PATTERNS, sources)

    @classmethod
    def from_spec(cls, spec: Any) -> VisualTerms | None:
        """From a recipe value: ``auto`` (the world's terms, on records of world sources), ``world``
        (the world's terms on every record with media), ``none`` / false / empty (no split), a list of
        terms, or a mapping ``{terms: [...], patterns: [...], sources: [...]}``."""
        if spec is None or spec is False or spec == "none" or (isinstance(spec, (list, dict)) and not spec):
            return None
        if spec == "auto":
            return cls.world(WORLD_SOURCES)
        if spec == "world":
            return cls.world()
        if isinstance(spec, (list, tuple)) and all(isinstance(t, str) for t in spec):
            return cls(tuple(spec)).checked()
        if isinstance(spec, dict) and not set(spec) - {"terms", "patterns", "sources"}:
            sources = spec.get("sources")
            return cls(
                _strings(spec.get("terms") or (), "terms"),
                _strings(spec.get("patterns") or (), "patterns"),
                None if sources is None else _strings(sources, "sources"),
            ).checked()
        raise ConfigError(
            "visual_terms must be auto, world, none, a list of terms or a mapping "
            f"{{terms, patterns, sources}}, got {spec!r}"
        )

    def checked(self) -> VisualTerms:
        """Self, after compiling the expression (a bad pattern is a ``ConfigError``)."""
        try:
            _ = self.regex
        except re.error as e:
            raise ConfigError(f"visual_terms: bad pattern ({e})") from None
        return self

    def to_spec(self) -> dict[str, Any]:
        return {"terms": list(self.terms), "patterns": list(self.patterns), "sources": self.sources}

    @cached_property
    def regex(self) -> re.Pattern[str] | None:
        words = sorted({t for t in self.terms if t}, key=len, reverse=True)  # longest first
        # Whole words, plurals included ("circles", "crosses").
        alts = [r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?:e?s)?(?!\w)"] if words else []
        alts += list(self.patterns)
        return re.compile("|".join(alts), re.IGNORECASE) if alts else None

    def applies_to(self, sample: Any) -> bool:
        """Whether the record's answers can hold visual tokens: it has media (and a matching source)."""
        if not getattr(sample, "media", None):
            return False
        return self.sources is None or str(getattr(sample, "source", "") or "").startswith(self.sources)

    def char_spans(self, text: str) -> list[tuple[int, int]]:
        """``[start, end)`` of every match in ``text``."""
        if self.regex is None:
            return []
        return [m.span() for m in self.regex.finditer(text) if m.end() > m.start()]

    def token_mask(self, text: str, offsets: Sequence[tuple[int, int]]) -> list[bool]:
        """Per token (its ``[start, end)`` characters in ``text``): whether it overlaps a match."""
        spans = self.char_spans(text)
        return [any(a < e and s < b for s, e in spans) for a, b in offsets]


def _strings(values: Iterable[Any], what: str) -> tuple[str, ...]:
    values = [values] if isinstance(values, str) else list(values)
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"visual_terms.{what} must be a list of strings")
    return tuple(values)


def token_offsets(tokenizer: Any, text: str, ids: Sequence[int]) -> list[tuple[int, int]]:
    """Character span of each token of ``ids`` (the tokenization of ``text``), from decoding growing
    prefixes: for tokenizers without an offset mapping."""
    out, prev = [], 0
    for j in range(len(ids)):
        end = min(len(text), len(tokenizer.decode(ids[: j + 1])))
        out.append((prev, max(prev, end)))
        prev = max(prev, end)
    return out
