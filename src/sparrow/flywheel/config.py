"""Settings of a flywheel run (``sparrow flywheel``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sparrow.refine.config import RefineConfig

LOSSES = ("adatailr", "ce")


class FlywheelError(ValueError):
    """A flywheel run cannot start or go on (the message says why)."""


def default_recipe(name: str = "captioner.yaml") -> Path:
    """``configs/flywheel/NAME`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[3] / "configs" / "flywheel" / name


SEEING_RECIPE = "captioner-seeing.yaml"  # the default recipe of a captioner that starts from a checkpoint


@dataclass(frozen=True)
class FlywheelConfig:
    """Round 0 refines the ASR transcripts with ``refine`` (an LLM); each later round trains a captioner
    (``recipe``: pre-train on the previous round's captions with ``loss``, then fine-tune on the human
    examples), lets it caption every transcript line again, and scores the result against the ground
    truth."""

    rounds: int = 2  # re-annotation rounds after round 0
    videos: int | None = 24  # training videos taken from the world (None: all)
    human_share: float = 0.1  # of those, the share whose ground truth plays the human-refined examples
    # one-line examples from the human videos for round 0's LLM, which is asked one transcript line at a
    # time (what a 135M LM can follow; a whole block makes it copy the example) and shown the 4 examples
    # most like that line (it copies the nearest pattern, so the nearest must be the right one)
    few_shot: int = 40
    loss: str = "adatailr"  # the captioner's pre-training loss: adatailr | ce
    # captioner recipe YAML (None: configs/flywheel/captioner.yaml, or captioner-seeing.yaml from a checkpoint)
    recipe: str | None = None
    # A trained Sparrow checkpoint directory (such as runs/seeing/final) that every round's captioner
    # starts from, as Video DataFlywheel fine-tunes a pretrained video-LLM; the recipe then defaults to
    # configs/flywheel/captioner-seeing.yaml. It must not have been trained on the flywheel's world.
    captioner_init: str | None = None
    steps: int | None = None  # caps every stage of the captioner recipe (quick runs)
    max_new_tokens: int = 24  # caption length when the captioner re-annotates
    seed: int = 0  # the human split, the captioner's training and the bootstrap
    resamples: int = 2000  # bootstrap resamples of the CIDEr-D differences
    vendi: bool = True  # False: skip the sentence encoder in the trinity reports
    refine: RefineConfig = field(
        default_factory=lambda: RefineConfig(
            template="refine-line", max_words=1, max_tokens=32, batch_size=16, nearest_examples=4
        )
    )

    def validate(self) -> None:
        if self.rounds < 0:
            raise FlywheelError(f"rounds must be >= 0, got {self.rounds}")
        if self.videos is not None and self.videos < 2:
            raise FlywheelError(f"videos must be at least 2, got {self.videos}")
        if not 0 < self.human_share < 1:
            raise FlywheelError(f"human_share must be in (0, 1), got {self.human_share}")
        if self.few_shot < 0:
            raise FlywheelError(f"few_shot must be >= 0, got {self.few_shot}")
        if self.loss not in LOSSES:
            raise FlywheelError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.steps is not None and self.steps < 1:
            raise FlywheelError(f"steps must be >= 1, got {self.steps}")
        if self.captioner_init is not None and not str(self.captioner_init).strip():
            raise FlywheelError("captioner_init must name a checkpoint directory, got an empty path")
        if self.max_new_tokens < 1:
            raise FlywheelError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        self.refine.validate()

    def recipe_path(self) -> Path:
        if self.recipe:
            return Path(self.recipe)
        return default_recipe(SEEING_RECIPE if self.captioner_init else "captioner.yaml")
