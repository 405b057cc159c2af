"""Progress hooks of a run made of several steps (the demo, the flywheel): the CLI draws its bars from
them; the library only calls them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class StepHooks:
    """``step(name)`` when a step starts; ``items(step, done, total)`` as a step progresses; ``train`` is
    handed to the trainer as its progress callback; ``note(text)`` for a warning the user should see."""

    step: Callable[[str], None] | None = None
    items: Callable[[str, int, int | None], None] | None = None
    train: Callable[[dict[str, Any]], None] | None = None
    note: Callable[[str], None] | None = None

    def start(self, name: str) -> None:
        if self.step:
            self.step(name)

    def advance(self, name: str, done: int, total: int | None) -> None:
        if self.items:
            self.items(name, done, total)

    def warn(self, text: str) -> None:
        if self.note:
            self.note(text)
