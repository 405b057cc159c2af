"""One item's work, the same on every executor: process it with a set-up stage and save its result, or
find the result it already has (known bad while reading, or finished by an earlier run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparrow.jobs.stage import ItemResult, Stage, WorkItem
from sparrow.jobs.state import load_result, save_result


def failure_reason(e: BaseException) -> str:
    """A one-line reason. Typed library errors carry a message meant for users; for builtin ones
    (KeyError('x') prints as "'x'") the type name is part of the reason."""
    builtin = type(e).__module__ == "builtins" and type(e) not in (ValueError, RuntimeError)
    reason = f"{type(e).__name__}: {e}" if builtin or not str(e) else str(e)
    return reason.splitlines()[0] if reason.strip() else type(e).__name__


def execute(stage: Stage, key: str, payload: Any, state_dir: str | None) -> ItemResult:
    """Process one item with a stage that is already set up; save the result when there is state."""
    try:
        result = ItemResult(key=key, ok=True, value=stage.process(payload))
    except Exception as e:  # a per-item failure must never stop the job
        result = ItemResult(key=key, ok=False, error=failure_reason(e))
    if state_dir is not None:
        save_result(Path(state_dir), result)
    return result


def resumed(stage: Stage, item: WorkItem, state_dir: Path | None) -> ItemResult | None:
    """The result an item already has: known bad while reading, or finished by an earlier run."""
    if item.error is not None:
        return ItemResult(key=item.key, ok=False, error=item.error)
    done = load_result(state_dir, item.key)
    return done if done is not None and stage.reusable(item, done) else None
