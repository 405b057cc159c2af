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
    """``max_steps`` caps every stage (quick runs); ``data_root`` is where the mixture's relative source
    paths point (None: the current directory); ``num_workers`` and ``strategy`` (None: the recipe's);
    ``threads``: torch CPU threads during the run (None: leave as is); ``progress`` receives the run's
    events (dicts with an ``event`` key)."""

    out: Path
    data_root: Path | None = None
    resume: bool = False
    max_steps: int | None = None
    device: str | None = None
    num_workers: int | None = None
    strategy: str | None = None
    progress: Progress | None = None
    threads: int | None = None
