"""The one guard that keeps two runs apart: an output records the settings it was made with, and a run
with other settings is refused, because its outputs would silently mix two configurations.

Jobs (``.state/fingerprint.json``), training (``run.json``), the flywheel (``flywheel.json``), experiments
and the demo's steps all compare settings here; each caller raises its own typed error, worded for its
command. Settings are compared as they read back from JSON (paths and other objects as strings, tuples
as lists), so a file written by an earlier run compares equal however it was indented.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparrow.io import atomic_write_text

UNREADABLE = "unreadable saved settings"


def as_recorded(settings: Any) -> Any:
    """``settings`` as a settings file reads them back."""
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def differences(recorded: Any, settings: Any) -> list[str]:
    """The top-level keys whose values differ, sorted (``["settings"]`` when they differ and are not both
    mappings); empty when the settings are the same."""
    old, new = as_recorded(recorded), as_recorded(settings)
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ["settings"]


def claim(path: str | Path, settings: Any, *, replace: bool = False) -> list[str]:
    """Record ``settings`` in ``path`` and return ``[]``; when ``path`` already records other settings,
    write nothing and return what differs (:func:`differences`, or ``[UNREADABLE]``). ``replace``: write
    whatever ``path`` holds (a run that never started)."""
    path = Path(path)
    if path.is_file() and not replace:
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return [UNREADABLE]
        changed = differences(recorded, settings)
        if changed:
            return changed
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n")
    return []
