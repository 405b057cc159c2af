"""A variant's settings: dotted keys over the recipe mapping (``stages.align.steps: 500``,
``model.connector.type: mlp_pool``), each value typed by YAML.

``sparrow.yamlio.apply_overrides`` sets flat ``key=value`` text on one dataclass; a recipe is nested
(stages in a list, the model in its own file), so a grid's keys walk the recipe's YAML mapping instead
and the recipe's own parser (``Recipe.from_dict``) judges the result, with its one-line errors.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from sparrow.experiment.errors import ExperimentError
from sparrow.paths import resolve_path


def _inline_model(recipe: dict[str, Any], base_dir: Path) -> None:
    """Replace a ``model: PATH`` with the config it names (paths made absolute), so that
    ``model.*`` keys can change it without touching the shared model file."""
    from sparrow.model.config import ConfigError, VideoLLMConfig

    try:
        recipe["model"] = VideoLLMConfig.from_yaml(resolve_path(recipe["model"], base_dir)).to_dict()
    except ConfigError as e:
        raise ExperimentError(str(e)) from e


def _child(node: Any, part: str, where: str) -> tuple[Any, Any]:
    """(container, key) of ``part`` inside ``node``: a list is indexed by position or by its items'
    ``name`` (``stages.align``); a mapping by key."""
    if isinstance(node, list):
        names = [item.get("name") if isinstance(item, dict) else None for item in node]
        if part in names:
            return node, names.index(part)
        if part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            return node, int(part)
        known = [n for n in names if n is not None]
        raise ExperimentError(
            f"{where}: no item {part!r} (use a position 0..{len(node) - 1} or a name {known})"
        )
    if isinstance(node, dict):
        return node, part
    raise ExperimentError(f"{where} is {node!r}, not a mapping or list")


def set_dotted(recipe: dict[str, Any], key: str, value: Any, base_dir: Path) -> None:
    """Set ``key`` (dotted) to ``value`` in ``recipe`` in place. Missing mappings on the way are made
    (``stages.tune.loss.name``); whether the result is a valid recipe is for the recipe parser to say."""
    parts = key.split(".")
    if not all(parts):
        raise ExperimentError(f"bad key {key!r}: empty part")
    if parts[0] == "model" and len(parts) > 1 and isinstance(recipe.get("model"), str):
        _inline_model(recipe, base_dir)
    node: Any = recipe
    for depth, part in enumerate(parts[:-1]):
        container, k = _child(node, part, ".".join(parts[:depth]) or "the recipe")
        if isinstance(container, dict) and container.get(k) is None:
            container[k] = {}
        node = container[k]
    container, k = _child(node, parts[-1], ".".join(parts[:-1]) or "the recipe")
    container[k] = copy.deepcopy(value)


def apply_dotted(
    recipe: dict[str, Any], overrides: dict[str, Any], base_dir: Path, where: str
) -> dict[str, Any]:
    """A copy of ``recipe`` with every ``key: value`` of ``overrides`` set, in order; errors name ``where``."""
    out = copy.deepcopy(recipe)
    for key, value in overrides.items():
        try:
            set_dotted(out, str(key), value, base_dir)
        except ExperimentError as e:
            raise ExperimentError(f"{where}: {e}") from e
    return out
