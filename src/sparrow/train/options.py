"""How to run a recipe (as opposed to what to train, which is the recipe). A light module: the CLI
takes its option defaults from here without importing torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[dict[str, Any]], None]


@dataclass
class RunOptions:
    """Each field's comment is also its ``sparrow train`` option's help."""

    out: Path  # Run directory: stage checkpoints, final/, metrics, plots.
    # Directory the mixture's relative source paths point into (e.g. the output of `sparrow world`).
    # Default: the current directory.
    data_root: Path | None = None
    # Media paths may lead anywhere inside this folder (default: each source file's own folder), e.g.
    # refine's OUT/captions.jsonl pointing at ../videos.
    media_root: Path | None = None
    resume: bool = False  # Continue the run in the run directory from its last checkpoint.
    max_steps: int | None = None  # Cap every stage at this many steps (quick runs).
    device: str | None = None  # cpu, cuda or cuda:N (default: GPU if available).
    num_workers: int | None = None  # Data-loader worker processes (default: the recipe's num_workers).
    strategy: str | None = None  # ddp or fsdp when launched with several processes (default: the recipe's).
    progress: Progress | None = None  # receives the run's events (dicts with an ``event`` key)
    # CPU threads per training process (default: leave torch's setting; `sparrow train` on CPU: the cores
    # left after the loader workers).
    threads: int | None = None
