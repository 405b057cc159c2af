"""OUT/demo_state.json: which steps finished with which settings, so that a re-run resumes."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparrow.demo.config import DemoError
from sparrow.io import atomic_write_text
from sparrow.jobs.hooks import StepHooks
from sparrow.run_guard import as_recorded, differences

STATE_FILE = "demo_state.json"
REDO_ON_CHANGE = ["eval", "curate"]  # step names, also their output folders
OWN_OUTPUTS = ("world", "runs", "eval", "curate", "figures", "report.html", "summary.json", STATE_FILE)


def json_default(o: Any) -> Any:
    """``json.dumps`` fallback: paths as strings, NaN as null."""
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def clear_outputs(out: Path) -> None:
    """Remove what an earlier demo wrote into ``out`` (only the demo's own files and folders)."""
    for name in OWN_OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


class Steps:
    """Steps remembered in OUT/demo_state.json with the settings they started with. A re-run skips a
    finished step whose outputs are still there and resumes an unfinished one (every step's job resumes
    by itself). Other settings than those recorded are an error: the outputs would mix two runs."""

    def __init__(self, out: Path, cb: StepHooks):
        self.path = out / STATE_FILE
        self.cb = cb
        self.state: dict[str, Any] = {}
        if self.path.is_file():
            try:
                self.state = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                self.state = {}
        self.timings: dict[str, float] = {}

    def check(self, keys: dict[str, Any]) -> None:
        """Refuse other world / synth / training settings than an earlier run's; other evaluation or
        curation settings just redo those (cheap) steps."""
        for name, key in keys.items():
            rec = self.state.get(name)
            if rec is None or not differences(rec.get("key"), key):
                continue
            if name in REDO_ON_CHANGE:
                for later in REDO_ON_CHANGE[REDO_ON_CHANGE.index(name) :]:
                    shutil.rmtree(self.path.parent / later, ignore_errors=True)
                    self.state.pop(later, None)
                self._save()
                return
            raise DemoError(
                f"{self.path.parent} holds a demo run with other {name} settings; re-run it with the "
                "same options, choose another --out, or pass --overwrite to start it again"
            )

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.state, indent=2, default=json_default) + "\n")

    def run(self, name: str, key: Any, outputs: list[Path], fn: Callable[[], Any]) -> Any:
        """``fn()``'s value, or the recorded one when step ``name`` finished earlier and left ``outputs``."""
        rec = self.state.get(name)
        if rec and rec.get("done") and all(p.exists() for p in outputs):
            self.cb.start(f"{name}: done earlier, skipped")
            self.timings[name] = 0.0
            return rec.get("value")
        self.state[name] = {"key": as_recorded(key), "done": False}
        self._save()
        t = time.perf_counter()
        value = fn()
        self.timings[name] = round(time.perf_counter() - t, 1)
        self.state[name] = {
            "key": as_recorded(key),
            "done": True,
            "value": value,
            "seconds": self.timings[name],
        }
        self._save()
        return value
