"""The trained checkpoint every round's captioner starts from (``FlywheelConfig.captioner_init``, as Video
DataFlywheel fine-tunes a pretrained video-LLM each round): that it is one, and that it was not trained on
the world the flywheel scores.

The flywheel scores the first training videos of its world against their ground-truth captions, and a
model trained on that world (``sparrow train configs/seeing/apollo-3stage.yaml --data-root world``) has
learnt exactly those captions. The checkpoint's run directory (the parent of ``final/``) records the files
it trained on in ``mixture_report.json``, as the training command named them (a relative one is looked for
from the current folder and the folders above the run), and in ``run.json`` the checkpoint it started
from (``init_from``), whose run is read the same way, back to the first. A file inside the flywheel's world, or inside a world that shares training videos with
it (the same ground truth: a copy, or the same seed with another video count), is refused; a record that
is missing or cannot be followed gives a warning the CLI shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparrow.flywheel.config import FlywheelError

REPORT = "mixture_report.json"
WORLD_FILE = "world.json"
GROUND_TRUTH = "transcripts/ground_truth.json"  # what the flywheel scores against


def check_checkpoint(path: str | Path) -> Path:
    """``path`` as a checkpoint directory (it holds ``config.json``); raises a one-line ``FlywheelError``."""
    ckpt = Path(path).expanduser()
    if not ckpt.is_dir():
        raise FlywheelError(f"captioner init: checkpoint directory not found: {ckpt}")
    if not (ckpt / "config.json").is_file():
        raise FlywheelError(f"captioner init: {ckpt} is not a Sparrow checkpoint (no config.json)")
    return ckpt


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def run_dir(ckpt: Path) -> Path | None:
    """The training run the checkpoint came from: ``final/`` or a stage's folder sits in it, a periodic
    checkpoint one level deeper (``checkpoints/...``)."""
    for d in (ckpt.parent, ckpt.parent.parent):
        if (d / REPORT).is_file() or (d / "run.json").is_file():
            return d
    return None


def _locate(path: str, run: Path) -> Path | None:
    """A source path as the training command named it: a relative one from the folder it ran in, which
    is the current folder or (``--out`` inside it) a folder above the run; None if neither holds it."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return next((base / p for base in (Path.cwd(), *run.absolute().parents) if (base / p).is_file()), None)


def trained_files(run: Path) -> dict[str, Path | None]:
    """The source files ``run``'s mixture report names, each as recorded -> where it is (``_locate``);
    empty when there is no readable report."""
    report = _read_json(run / REPORT)
    stages = report.get("stages") if isinstance(report, dict) else None
    files: dict[str, Path | None] = {}
    for stage in stages if isinstance(stages, list) else []:
        for src in stage.get("sources", []) if isinstance(stage, dict) else []:
            if isinstance(src, dict) and isinstance(src.get("path"), str):
                files[src["path"]] = _locate(src["path"], run)
    return files


def _parent_checkpoint(run: Path) -> Path | None:
    """The checkpoint ``run`` itself started from (its recipe's ``init_from``, in ``run.json``), if any."""
    meta = _read_json(run / "run.json")
    recipe = meta.get("recipe") if isinstance(meta, dict) else None
    init = recipe.get("init_from") if isinstance(recipe, dict) else None
    if not isinstance(init, str) or not init:
        return None
    path = Path(init).expanduser()
    base = recipe.get("base_dir")
    if not path.is_absolute() and isinstance(base, str):
        path = Path(base) / path
    return path if (path / "config.json").is_file() else None


def lineage_files(ckpt: Path) -> tuple[dict[str, Path | None], list[Path]]:
    """The training files of ``ckpt`` and of every checkpoint it was trained from (``init_from``, followed
    run by run), and the checkpoints in that line whose run records no training data."""
    files: dict[str, Path | None] = {}
    unrecorded: list[Path] = []
    seen: set[Path] = set()
    current: Path | None = ckpt
    while current is not None and current.resolve() not in seen:
        seen.add(current.resolve())
        run = run_dir(current)
        found = trained_files(run) if run is not None else {}
        if not found:
            unrecorded.append(current)
        files.update(found)
        current = _parent_checkpoint(run) if run is not None else None
    return files, unrecorded


def world_of(path: Path) -> Path | None:
    """The nearest folder holding ``path`` that is a ``sparrow world`` (it has ``world.json``)."""
    for d in path.parents:
        if (d / WORLD_FILE).is_file():
            return d
    return None


def _train_truth(world: Path) -> dict[str, str]:
    """The world's training videos' ground truth, each entry as canonical JSON."""
    truth = _read_json(world / GROUND_TRUTH)
    if not isinstance(truth, dict):
        return {}
    return {v: json.dumps(e, sort_keys=True) for v, e in truth.items() if v.startswith("train-")}


def shared_videos(trained_on: Path, world: Path) -> list[str]:
    """The training videos of ``world`` whose ground truth (times and captions) the world ``trained_on``
    also has: the same videos, whatever the folder, the ids or the video count."""
    seen = set(_train_truth(trained_on).values())
    return sorted(v for v, e in _train_truth(world).items() if e in seen)


def leaked_from(files: list[Path], world: Path) -> Path | None:
    """The training file, or the training world, that shares videos with ``world``; None if none does."""
    resolved = [f.resolve() for f in files]
    for f in resolved:
        if world in f.parents:
            return f
    homes = {h for h in map(world_of, resolved) if h is not None}
    return next((h for h in sorted(homes) if shared_videos(h, world)), None)


def check_captioner_init(init: str | Path, world: str | Path) -> list[str]:
    """Check the checkpoint ``init`` the captioner starts from against the ``world`` the flywheel scores.
    Raises a one-line ``FlywheelError`` when it is no checkpoint or was trained on that world's videos;
    returns warnings (empty: none) when its training data cannot be told or found."""
    ckpt, world = check_checkpoint(init), Path(world).resolve()
    files, unrecorded = lineage_files(ckpt)
    leak = leaked_from([f for f in files.values() if f is not None], world)
    if leak is not None:
        raise FlywheelError(
            f"captioner init {ckpt} was trained on {leak}, which shares videos with the world the flywheel "
            f"scores ({world}): its captions would be scored against what it learnt; run the flywheel "
            "on another world (sparrow world --seed 1 --out world-fw)"
        )
    if unrecorded:
        which = ckpt if unrecorded[0] == ckpt else f"{unrecorded[0]} (which {ckpt} was trained from)"
        return [
            f"captioner init {which} records no training data ({REPORT} beside it); make sure it was not "
            f"trained on {world}, whose ground truth the flywheel scores"
        ]
    missing = sorted(name for name, f in files.items() if f is None or not f.is_file())
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return [
            f"captioner init {ckpt}: its training data ({missing[0]}{more}, from {REPORT}) is not found from "
            f"this folder; make sure it is not from {world}"
        ]
    return []
