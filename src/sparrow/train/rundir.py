"""The run directory: what a training run writes under ``--out``, the guard that keeps two runs apart,
and the point a resumed run goes on from.

    run.json                           the recipe and --max-steps as run (a resume must use the same)
    stage{k}-{name}/                   the model after stage k (``sparrow.model.load_pretrained``)
    final/                             the model after the last stage
    checkpoints/stage{k}-step{n}/      periodic checkpoints: model + trainer_state.pt
    metrics.jsonl                      one line per optimizer step
    loss_stage{k}-{name}.png           loss curve of each stage
    mixture_report.json                what each stage actually drew, per source and per media kind
    errors.jsonl                       rejected records and samples (the run goes on)

Only the main process writes; the guard is collective (every process learns whether the run may go on).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.io import LineError, atomic_write_text, iter_jsonl
from sparrow.run_guard import claim
from sparrow.train import distributed as D
from sparrow.train.recipe import StageConfig

STATE_FILE = "trainer_state.pt"
STAGE_DONE = "stage_done.json"
METRICS = "metrics.jsonl"
ERRORS = "errors.jsonl"


class TrainError(RuntimeError):
    """A run cannot start or continue (output holds another run, bad data, unreadable checkpoint, ...)."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a run goes on: stage index, optimizer steps already done in it, and the directory whose
    weights to load (None: the freshly built model). ``step > 0`` means a mid-stage checkpoint."""

    stage: int = 0
    step: int = 0
    weights: Path | None = None
    threads: int | None = None  # CPU threads of the finished stage resumed after (None: not recorded)


def stage_dir_name(k: int, stage: StageConfig) -> str:
    return f"stage{k + 1}-{stage.name}"


class RunDir:
    def __init__(self, out: str | Path, info: D.DistInfo):
        self.out, self.info = Path(out), info

    def stage_dir(self, k: int, stage: StageConfig) -> Path:
        return self.out / stage_dir_name(k, stage)

    def loss_plot(self, k: int, stage: StageConfig) -> Path:
        return self.out / f"loss_{stage_dir_name(k, stage)}.png"

    def claim(self, run: dict[str, Any], resume: bool) -> None:
        """Write ``run.json``, refusing an output that holds another run (or, on resume, a different one)."""
        error: str | None = None
        if self.info.is_main:
            # A run has started once a step is logged; a run.json alone (a start that failed on its
            # inputs) is simply replaced.
            started = (self.out / METRICS).exists()
            if started and not resume:
                error = f"{self.out} already holds a training run; pass --resume to continue it or choose another --out"
            elif claim(self.out / "run.json", run, replace=not started):
                error = (
                    f"{self.out} was started with a different recipe or --max-steps; "
                    "resume it with the same ones (or choose another --out)"
                )
        error = D.broadcast_object(error, self.info)
        if error:
            raise TrainError(error)

    def resume_point(self, stages: list[StageConfig]) -> ResumePoint:
        """After the last complete stage, or at the stage's last checkpoint if it has one."""
        k = 0
        while k < len(stages) and (self.stage_dir(k, stages[k]) / STAGE_DONE).exists():
            k += 1
        previous = self.stage_dir(k - 1, stages[k - 1]) if k > 0 else None
        threads = _recorded_threads(previous / STAGE_DONE) if previous is not None else None
        if k == len(stages):
            return ResumePoint(k, 0, previous, threads)
        ckpts = self.checkpoints(k)
        if ckpts:
            step, path = ckpts[-1]
            return ResumePoint(k, step, path)  # its trainer state records the threads
        return ResumePoint(k, 0, previous, threads)

    def checkpoint_dir(self, k: int, step: int, tmp: bool = False) -> Path:
        return self.out / "checkpoints" / f"{'.tmp-' if tmp else ''}stage{k + 1}-step{step:07d}"

    def checkpoints(self, k: int) -> list[tuple[int, Path]]:
        """The complete checkpoints of stage ``k`` as ``(step, directory)``, oldest first."""
        root = self.out / "checkpoints"
        prefix = f"stage{k + 1}-step"
        found = []
        if root.is_dir():
            for p in root.iterdir():
                if p.name.startswith(prefix) and (p / STATE_FILE).exists():
                    found.append((int(p.name[len(prefix) :]), p))
        return sorted(found)

    def prune_checkpoints(self, k: int, keep: int) -> None:
        """Keep the last ``keep`` checkpoints of stage ``k`` (0: none, once the stage is saved)."""
        ckpts = self.checkpoints(k)
        for _, old in ckpts[: max(0, len(ckpts) - keep)]:
            shutil.rmtree(old, ignore_errors=True)

    def truncate_logs(self, k: int, step: int) -> None:
        """Drop metric and error lines written after the point a resumed run goes on from."""
        for name in (METRICS, ERRORS):
            path = self.out / name
            if not path.exists():
                continue
            keep = []
            for _, row in iter_jsonl(path):
                if isinstance(row, LineError):
                    continue  # a line cut short by the kill
                s, n = int(row.get("stage", 0)), int(row.get("step", 0))
                if s < k + 1 or (s == k + 1 and n <= step):
                    keep.append(json.dumps(row, ensure_ascii=False) + "\n")
            atomic_write_text(path, "".join(keep))

    def append(self, name: str, rows: list[dict[str, Any]]) -> None:
        if rows and self.info.is_main:
            with (self.out / name).open("a", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")

    def write_mixture_report(self, k: int, stage: StageConfig, report: dict[str, Any]) -> None:
        """Set stage ``k``'s entry of ``mixture_report.json`` (a resumed run rewrites its own stage only)."""
        path = self.out / "mixture_report.json"
        data: dict[str, Any] = {"stages": []}
        if path.exists():
            with contextlib.suppress(json.JSONDecodeError):
                data = json.loads(path.read_text(encoding="utf-8"))
        stages = [s for s in data.get("stages", []) if s.get("stage") != k + 1]
        stages.append({"stage": k + 1, "name": stage.name, **report})
        data["stages"] = sorted(stages, key=lambda s: s["stage"])
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")

    def mark_done(
        self, k: int, stage: StageConfig, steps: int, final_loss: float | None, threads: int
    ) -> None:
        """Stage ``k`` is saved: a resume starts after it, and its periodic checkpoints are superseded."""
        done = {
            "stage": k + 1,
            "name": stage.name,
            "steps": steps,
            "final_loss": final_loss,
            "threads": threads,
        }
        atomic_write_text(self.stage_dir(k, stage) / STAGE_DONE, json.dumps(done) + "\n")
        self.prune_checkpoints(k, keep=0)


def _recorded_threads(path: Path) -> int | None:
    """The ``threads`` field of a ``stage_done.json`` (None in one written before it was recorded)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("threads")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def read_metrics(path: str | Path, stage: int | None = None) -> list[dict[str, Any]]:
    """The metric rows of a run (optionally one stage's)."""
    path = Path(path)
    if not path.exists():
        return []
    return [
        row
        for _, row in iter_jsonl(path)
        if not isinstance(row, LineError) and (stage is None or row.get("stage") == stage)
    ]
