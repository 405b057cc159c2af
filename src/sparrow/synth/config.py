"""What decides a synth job's output: segmentation, limits, field mapping and rendering settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sparrow.render import RenderConfig, RenderError
from sparrow.synth.errors import SynthError
from sparrow.synth.presets import Preset

UNITS = ("words", "tokens")
FIELDS = ("context", "question", "answer", "id")


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the output. Limits follow the paper: at most 100 frames and
    text tokens + 96 x frames <= 10,240 (MiniCPM-V spends 96 visual tokens per frame).

    What happens to characters no font can draw is ``render.missing_glyphs``: ``"replace"`` draws a
    placeholder and counts them in the sample's ``meta``, ``"error"`` sends the record to errors.jsonl.

    Each field's comment is also its ``sparrow synth`` option's help."""

    unit: str = "words"  # Segmentation unit: 'words' or 'tokens' (needs a tokenizer).
    tokenizer: str | None = None  # Local tokenizer directory: token units and exact text-token counts.
    units_per_frame: int = 115  # At most this many units per frame (fewer when they do not fit).
    max_frames: int = 100  # Drop (or truncate) samples with more frames.
    max_tokens: int = 10_240  # Token budget: text tokens + tokens-per-frame x frames must not exceed it.
    tokens_per_frame: int = 96  # Visual tokens a frame costs.
    truncate: bool = False  # Keep the first frames of over-limit samples.
    fields: tuple[tuple[str, str], ...] = (
        ("answer", "answer"),
        ("context", "context"),
        ("question", "question"),
    )
    source: str | None = None  # The samples' 'source' label (default: the input file's stem).
    render: RenderConfig = field(default_factory=RenderConfig)
    # How raw records become (context, question, answer) instead of ``fields`` (synth/presets.py).
    preset: Preset | None = None
    # Drop records whose question has N words or more, the paper's instruction-length filter (500 for
    # LongAlpaca, the longalpaca preset's default; 30 for LongQLoRA); 0: no limit. Default: the preset's,
    # else no limit.
    max_question_words: int | None = None

    def validate(self) -> None:
        if self.unit not in UNITS:
            raise SynthError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.unit == "tokens" and not self.tokenizer:
            raise SynthError("unit 'tokens' needs a local tokenizer path (--tokenizer DIR)")
        if self.tokenizer and not Path(self.tokenizer).exists():
            raise SynthError(f"tokenizer path not found: {self.tokenizer}")
        if self.units_per_frame < 1:
            raise SynthError("units per frame must be at least 1")
        if self.max_frames < 1 or self.max_tokens < 1 or self.tokens_per_frame < 0:
            raise SynthError("max frames and max tokens must be positive; tokens per frame >= 0")
        if self.max_question_words is not None and self.max_question_words < 0:
            raise SynthError("max question words must be >= 0 (0: no limit)")
        try:
            self.render.validate()
        except RenderError as e:
            raise SynthError(str(e)) from e

    def field_map(self) -> dict[str, str]:
        return dict(self.fields)

    def question_word_limit(self) -> int:
        """The instruction-length limit in force (0: none)."""
        if self.max_question_words is not None:
            return self.max_question_words
        return self.preset.max_question_words if self.preset is not None else 0


def parse_fields(spec: str | None) -> tuple[tuple[str, str], ...]:
    """``context=text,question=instruction,answer=output[,id=uid]`` -> field pairs (dotted keys reach into
    nested objects)."""
    mapping = {"context": "context", "question": "question", "answer": "answer"}
    if spec:
        for part in spec.split(","):
            if not part.strip():
                continue
            name, eq, key = part.partition("=")
            name, key = name.strip(), key.strip()
            if not eq or name not in FIELDS or not key:
                raise SynthError(f"--fields entry {part!r} must be NAME=KEY with NAME in {FIELDS}")
            mapping[name] = key
    return tuple(sorted(mapping.items()))
