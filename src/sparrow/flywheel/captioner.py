"""The captioner of one flywheel round: the recipe filled in with the round's files, loss and starting
checkpoint (``--captioner-init``), and its training run (resumable: a round interrupted while training goes
on from its last checkpoint)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparrow.flywheel.config import FlywheelConfig, FlywheelError
from sparrow.flywheel.pretrained import check_checkpoint
from sparrow.train.recipe import Recipe, RecipeError
from sparrow.yamlio import load_yaml

PLACEHOLDERS = ("$captions", "$human")


def captioner_recipe(cfg: FlywheelConfig, captions: Path, human: Path, seed: int | None = None) -> Recipe:
    """The recipe of ``cfg``: ``$captions`` / ``$human`` sources point at the given files, the first
    stage's loss is ``cfg.loss``, the seed is ``seed`` (default ``cfg.seed``) and, with
    ``cfg.captioner_init``, the model is that checkpoint (the recipe's ``model`` is dropped)."""
    path = cfg.recipe_path()
    d = copy.deepcopy(load_yaml(path, "recipe", RecipeError))
    stages = d.get("stages") if isinstance(d, dict) else None
    if not stages:
        raise FlywheelError(f"captioner recipe {path} has no stages")
    if cfg.captioner_init:
        d.pop("model", None)
        d["init_from"] = str(check_checkpoint(cfg.captioner_init).resolve())
    files = {"$captions": str(captions.resolve()), "$human": str(human.resolve())}
    used = set()
    for stage in stages:
        for src in (stage.get("mixture") or {}).get("sources", []):
            if isinstance(src, dict) and src.get("path") in files:
                used.add(src["path"])
                src["path"] = files[src["path"]]
    if "$captions" not in used:
        raise FlywheelError(f"captioner recipe {path}: no source reads $captions (the round's captions)")
    loss = dict(stages[0].get("loss") or {})
    loss["name"] = cfg.loss
    stages[0]["loss"] = loss
    d["seed"] = cfg.seed if seed is None else seed
    try:
        return Recipe.from_dict(d, base_dir=path.resolve().parent)
    except RecipeError as e:
        raise FlywheelError(f"captioner recipe {path}: {e}") from e


def train_captioner(
    recipe: Recipe,
    out: Path,
    data_root: Path,
    max_steps: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Train (or finish training) the captioner into ``out``; returns its final checkpoint."""
    from sparrow.train import RunOptions, train

    final = out / "final"
    if not (final / "config.json").is_file():
        train(
            recipe,
            RunOptions(out=out, data_root=data_root, resume=True, max_steps=max_steps, progress=progress),
        )
    return final
