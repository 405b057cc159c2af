"""What the demo runs with: ``DemoConfig``, its defaults and the names of its runs and models.

Stdlib only, so the CLI can read the defaults without importing the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHANCE = 0.25  # four options per question
# Sources the video-only baseline leaves out of every stage's mixture.
NON_VIDEO_SOURCES = ("synthetic", "text")
MAIN_RUN, BASELINE_RUN, REFERENCE = "apollo-3stage", "video-only", "untrained"
DEFAULT_OUT = Path("demo-out")
# A first look in a few minutes: a smaller world and a quarter of the training steps.
QUICK_VIDEOS = {"train": 120, "val": 5, "test": 60}
QUICK_STEPS_SCALE = 0.25


class DemoError(RuntimeError):
    """The demo cannot run (missing recipe, unwritable output, settings that clash with an earlier run)."""


def default_recipe() -> Path:
    """``configs/tiny/apollo-3stage.yaml`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[3] / "configs" / "tiny" / "apollo-3stage.yaml"


def _world_videos() -> dict[str, Any]:
    # More training videos and a larger test split than the bare tiny preset: enough questions for the
    # tiny model to learn from in minutes, and a confidence interval narrow enough to read.
    return {"videos": {"train": 300, "val": 10, "test": 120}}


@dataclass
class DemoConfig:
    out: Path = DEFAULT_OUT
    seed: int = 0
    preset: str = "tiny"
    world_overrides: dict[str, Any] = field(default_factory=_world_videos)
    recipe: Path | None = None  # default: configs/tiny/apollo-3stage.yaml
    max_steps: int | None = None  # cap every training stage (quick runs)
    steps_scale: float = 1.0  # multiply every stage's steps (0.25: a quick look; 2: a longer run)
    workers: int = 2
    threads: int | None = None
    synth_size: int = 224  # rendered frame side; the tiny model sees 64 px anyway
    synth_font_size: int = 12
    eval_batch_size: int = 8
    # cloze_norm: each option's text scored after the bare question, per token. A sub-million-parameter
    # model trained for minutes cannot learn to bind option letters to contents; it can learn what the
    # answer is. Per token, because a summed score favours short options (an untrained model then scores
    # ~0.33 instead of 0.25 on this benchmark).
    eval_method: str = "cloze_norm"
    bootstrap: int = 1000
    curate_top_k: int | None = None
    baseline: bool = True
    # Evaluate the untrained model too (same config and seed as the runs start from): under cloze scoring
    # "chance" is not exactly 1/4, so the demo measures the floor instead of assuming it.
    reference: bool = True
    overwrite: bool = False  # start again: remove what an earlier demo wrote into ``out``

    def recipe_path(self) -> Path:
        path = Path(self.recipe) if self.recipe else default_recipe()
        if not path.is_file():
            raise DemoError(f"recipe not found: {path} (pass --recipe)")
        return path


@dataclass
class DemoCallbacks:
    """Hooks the CLI uses for progress bars. ``step(name)`` when a step starts; ``items(step, done, total)``
    as a step progresses; ``train`` is handed to the trainer as its progress callback."""

    step: Callable[[str], None] | None = None
    items: Callable[[str, int, int | None], None] | None = None
    train: Callable[[dict[str, Any]], None] | None = None

    def start(self, name: str) -> None:
        if self.step:
            self.step(name)

    def advance(self, name: str, done: int, total: int | None) -> None:
        if self.items:
            self.items(name, done, total)
