"""Settings of the procedural world and its presets (tiny / small / medium)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

CATEGORIES: tuple[str, ...] = (
    "perception",
    "counting",
    "temporal_order",
    "temporal_localization",
    "duration_speed",
    "ocr",
    "long_range",
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
PHRASINGS: tuple[str, ...] = ("templates", "paraphrases")


class WorldError(ValueError):
    """The world cannot be generated with these settings (the message says which one)."""


@dataclass
class WorldConfig:
    """Everything that shapes the generated world. Same config + same seed = byte-identical output.

    Counts are per split. ``long_videos`` of each split's videos are "long" (minutes); the rest are short.
    """

    seed: int = 0
    preset: str = "tiny"
    # videos
    videos: dict[str, int] = field(default_factory=lambda: {"train": 70, "val": 15, "test": 15})
    long_videos: dict[str, int] = field(default_factory=lambda: {"train": 4, "val": 2, "test": 2})
    short_seconds: tuple[int, int] = (5, 20)
    long_seconds: tuple[int, int] = (60, 150)
    fps_choices: tuple[int, ...] = (10, 12, 15, 20, 24, 25, 30)
    long_fps_choices: tuple[int, ...] = (10, 12, 15)  # long videos: fewer frames to encode and to train on
    size: int = 128
    crf: int = 20
    x264_preset: str = "ultrafast"
    gop_seconds: float = 2.0  # a keyframe every 2 s keeps seeking cheap for fps / clip samplers
    # questions
    questions_per_video: int = 6
    questions_per_long_video: int = 8
    category_weights: dict[str, float] = field(
        default_factory=lambda: {
            "perception": 1.5,
            "counting": 2.0,  # counts, seconds and speeds are balanced per split afterwards, which drops some
            "temporal_order": 1.0,
            "temporal_localization": 1.0,
            "duration_speed": 2.0,
            "ocr": 1.5,
            "long_range": 2.0,
        }
    )
    phrasing: str = "paraphrases"  # "templates": one fixed phrasing per question type (low diversity)
    text_answerable: float = 0.15  # share of questions whose options give the answer away by wording
    # transcripts
    transcript_noise: float = 0.3  # per-line probability of an ASR-like corruption
    # text
    text_records_per_video: int = 1
    frame_captions_per_video: int = 8  # one-frame caption records per train video (alignment stage)
    corpus_docs: dict[str, int] = field(default_factory=lambda: {"train": 32, "val": 4, "test": 4})
    corpus_words: tuple[int, int] = (600, 2000)
    corpus_questions_per_doc: int = 2

    def validate(self) -> None:
        if self.preset not in PRESETS and self.preset != "custom":
            raise WorldError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        for split in SPLITS:
            if self.videos.get(split, 0) < 0 or self.long_videos.get(split, 0) < 0:
                raise WorldError("video counts must be >= 0")
            if self.long_videos.get(split, 0) > self.videos.get(split, 0):
                raise WorldError(f"{split}: more long videos than videos")
        if set(self.videos) - set(SPLITS) or set(self.long_videos) - set(SPLITS):
            raise WorldError(f"splits must be among {SPLITS}")
        if not 0.0 <= self.text_answerable <= 1.0:
            raise WorldError("text_answerable must be in [0, 1]")
        if not 0.0 <= self.transcript_noise <= 1.0:
            raise WorldError("transcript_noise must be in [0, 1]")
        if self.phrasing not in PHRASINGS:
            raise WorldError(f"phrasing must be one of {PHRASINGS}")
        if not 32 <= self.size <= 1024 or self.size % 2:
            raise WorldError("size must be an even number of pixels in [32, 1024]")
        if self.short_seconds[0] < 4 or self.short_seconds[1] < self.short_seconds[0]:
            raise WorldError("short_seconds must be (min, max) with min >= 4")
        if self.long_seconds[0] < 30 or self.long_seconds[1] < self.long_seconds[0]:
            raise WorldError("long_seconds must be (min, max) with min >= 30")
        if (
            not self.fps_choices
            or not self.long_fps_choices
            or min(self.fps_choices + self.long_fps_choices) < 1
        ):
            raise WorldError("fps choices must be positive")
        unknown = set(self.category_weights) - set(CATEGORIES)
        if unknown:
            raise WorldError(f"unknown categories {sorted(unknown)}; choose from {CATEGORIES}")
        if self.questions_per_video < 1 or self.questions_per_long_video < 1:
            raise WorldError("questions per video must be >= 1")
        if self.corpus_words[0] < 100 or self.corpus_words[1] < self.corpus_words[0]:
            raise WorldError("corpus_words must be (min, max) with min >= 100")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise WorldError(f"unknown world settings {sorted(unknown)}")
        cfg = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
        cfg.validate()
        return cfg


def _splits(train: int, held_out: int) -> dict[str, int]:
    return {"train": train, "val": held_out, "test": held_out}


def _scaled(
    train_videos: int, long_seconds: tuple[int, int], corpus_words: tuple[int, int], questions_per_doc: int
) -> dict[str, Any]:
    """A larger preset sized by its training videos n: n/8 videos each in val and test, n/20 long training
    videos (n/80 in val and test) and n/3 corpus documents (n/24 in val and test)."""
    n = train_videos
    return {
        "videos": _splits(n, n // 8),
        "long_videos": _splits(n // 20, n // 80),
        "long_seconds": long_seconds,
        "corpus_docs": _splits(n // 3, n // 24),
        "corpus_words": corpus_words,
        "corpus_questions_per_doc": questions_per_doc,
    }


PRESETS: dict[str, dict[str, Any]] = {
    # The demo's world: 100 videos, 8 of them one to two and a half minutes long; < 1 min on 2 cores.
    "tiny": {},
    "small": _scaled(480, long_seconds=(60, 240), corpus_words=(1500, 4000), questions_per_doc=3),
    "medium": _scaled(2400, long_seconds=(60, 300), corpus_words=(3000, 8000), questions_per_doc=4),
}


def preset_config(preset: str = "tiny", seed: int = 0, **overrides: Any) -> WorldConfig:
    """The config of a preset with some settings overridden (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise WorldError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    cfg = replace(WorldConfig(), preset=preset, seed=seed, **PRESETS[preset])
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    cfg.validate()
    return cfg
