"""The recipes the demo trains: the shipped one (steps scaled) and its video-only variant."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from sparrow.demo.config import NON_VIDEO_SOURCES, DemoConfig


def load_recipe(cfg: DemoConfig) -> Any:
    """The demo's recipe with every stage's steps scaled by ``cfg.steps_scale``."""
    from sparrow.train.recipe import Recipe

    return scale_steps(Recipe.from_yaml(cfg.recipe_path()), cfg.steps_scale)


def video_only_variant(recipe: Any) -> Any:
    """The same recipe with the synthetic and text sources removed from every stage (a stage that would
    be left empty keeps its sources): the baseline that isolates what the mix adds."""
    from sparrow.train.recipe import Recipe

    d = copy.deepcopy(recipe.to_dict())
    for stage in d["stages"]:
        sources = stage["mixture"]["sources"]
        kept = [s for s in sources if s.get("name") not in NON_VIDEO_SOURCES]
        if kept:
            stage["mixture"]["sources"] = kept
    base_dir = d.pop("base_dir", None)
    return Recipe.from_dict(d, base_dir=None if base_dir is None else Path(base_dir))


def scale_steps(recipe: Any, scale: float) -> Any:
    """The recipe with every stage's ``steps`` multiplied by ``scale`` (at least 1 step each)."""
    if scale == 1.0:
        return recipe
    recipe = copy.deepcopy(recipe)
    for stage in recipe.stages:
        if stage.steps is not None:
            stage.steps = max(1, round(stage.steps * scale))
        elif stage.epochs is not None:
            stage.epochs = stage.epochs * scale
    return recipe
