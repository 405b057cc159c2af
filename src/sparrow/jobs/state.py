"""A job's state directory: one small JSON file per finished item, and the settings it was made with.

Each result is saved atomically as soon as its item finishes, so a killed run loses at most the items
in flight; a re-run loads the saved results instead of redoing them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from sparrow.io import atomic_write_text
from sparrow.jobs.stage import ItemResult, JobError
from sparrow.run_guard import claim

STATE_DIR = ".state"  # under a job's output directory
FINGERPRINT = "fingerprint.json"  # the settings the state was made with


def prepare_state(state_dir: str | os.PathLike, fingerprint: dict[str, Any], overwrite: bool = False) -> Path:
    """Create (or reuse) a job's state directory. A directory left by a run with different settings is
    refused unless ``overwrite``: mixing results of two configurations would silently corrupt output."""
    state_dir = Path(state_dir)
    if state_dir.exists() and overwrite:
        shutil.rmtree(state_dir)
    if claim(state_dir / FINGERPRINT, fingerprint):
        raise JobError(
            f"{state_dir} holds a run with different settings; use a new output directory or --overwrite"
        )
    return state_dir


def state_file(state_dir: Path, key: str) -> Path:
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
    return state_dir / digest[:2] / f"{digest}.json"


def save_result(state_dir: Path, result: ItemResult) -> None:
    record = {"key": result.key, "ok": result.ok, "value": result.value, "error": result.error}
    atomic_write_text(state_file(state_dir, result.key), json.dumps(record))


def load_result(state_dir: Path | None, key: str) -> ItemResult | None:
    """The saved result of ``key``, marked ``skipped``; None when there is none (or it is damaged)."""
    if state_dir is None:
        return None
    path = state_file(state_dir, key)
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged state file is redone, not trusted
    if d.get("key") != key:
        return None
    return ItemResult(key=key, ok=bool(d["ok"]), value=d.get("value"), error=d.get("error"), skipped=True)
