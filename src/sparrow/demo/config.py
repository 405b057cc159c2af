"""What the demo runs with: ``DemoConfig``, its defaults and the names of its runs and models.

Stdlib only, so the CLI can read the defaults without importing the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHANCE = 0.25  # four options per question
# Sources the video-only baseline leaves out of every stage's mixture.
NON_VIDEO_SOURCES = ("synthetic", "text")
MAIN_RUN, BASELINE_RUN, REFERENCE = "apollo-3stage", "video-only", "untrained"
DEFAULT_OUT = Path("demo-out")
# A first look in a few minutes: a smaller world and a twentieth of the recipe's training steps.
QUICK_VIDEOS = {"train": 120, "val": 5, "test": 60}
QUICK_STEPS_SCALE = 0.05


class DemoError(RuntimeError):
    """The demo cannot run (missing recipe, unwritable output, settings that clash with an earlier run)."""


def default_recipe() -> Path:
    """``configs/seeing/apollo-3stage.yaml`` of the source tree this package runs from: the model that
    sees (pretrained EfficientNet-Lite0 at its stride-8 block, a small LM from scratch, an alignment
    stage on single-frame captions first; docs/seeing.md)."""
    return Path(__file__).resolve().parents[3] / "configs" / "seeing" / "apollo-3stage.yaml"


def _world_videos() -> dict[str, Any]:
    # More training videos and a larger test split than the bare tiny preset: enough questions for the
    # tiny model to learn from in minutes, and a confidence interval narrow enough to read.
    return {"videos": {"train": 300, "val": 10, "test": 120}}


@dataclass
class DemoConfig:
    """What the demo runs with; each field's comment is also its ``sparrow demo`` option's help."""

    out: Path = DEFAULT_OUT  # Output directory (re-run to resume).
    seed: int = 0  # Seed of the world, the training and the bootstrap.
    preset: str = "tiny"  # World size: tiny, small or medium.
    world_overrides: dict[str, Any] = field(default_factory=_world_videos)
    recipe: Path | None = None  # Training recipe (default: configs/seeing/apollo-3stage.yaml).
    max_steps: int | None = None  # Cap every training stage at this many steps (quick runs).
    # Multiply every stage's steps. Measured on the idle 2-core machine at 0.25: 18 min 32 s (training
    # 715 s, 20 evaluations 368 s, world and synth 21 s); at 0.15: 13 min 14 s (training 418 s).
    # 1 trains the recipe as written (`make demo-long`); docs/seeing.md.
    steps_scale: float = 0.15
    workers: int = 2  # Processes for world and synth.
    # CPU threads for training and evaluation (default: cores minus loader workers for training, 1 for
    # evaluation; on an idle machine 2 threads train faster).
    threads: int | None = None
    synth_size: int = 224  # rendered frame side; the tiny model sees 64 px anyway
    synth_font_size: int = 12
    eval_batch_size: int = 8
    # How questions are scored: cloze_norm (option texts after the bare question, per token; the demo's
    # default), cloze (summed), loglik (option letters) or generate. Why cloze_norm: a sub-million-parameter
    # model trained for minutes cannot learn to bind option letters to contents, only what the answer is;
    # and a summed score favours short options (an untrained model then scores ~0.33 instead of 0.25).
    # See docs/demo.md.
    eval_method: str = "cloze_norm"
    bootstrap: int = 1000
    curate_top_k: int | None = None
    baseline: bool = True  # Also train the video-only baseline (without it, curation has fewer models).
    # Evaluate the untrained model too (same config and seed as the runs start from): under cloze scoring
    # "chance" is not exactly 1/4, so the demo measures the floor instead of assuming it.
    reference: bool = True
    overwrite: bool = False  # Start again: remove what an earlier demo wrote into the output directory.

    def recipe_path(self) -> Path:
        path = Path(self.recipe) if self.recipe else default_recipe()
        if not path.is_file():
            raise DemoError(f"recipe not found: {path} (pass --recipe)")
        return path
