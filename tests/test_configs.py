"""The shipped recipes under configs/seeing and configs/flywheel load and validate, and the seeing
models read the tower layers they say they do (no weights are loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparrow.model.config import VideoLLMConfig
from sparrow.model.packaged_specs import tower_spec
from sparrow.train.recipe import Recipe

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(
    p for d in ("seeing", "flywheel") for p in (REPO / "configs" / d).glob("*.yaml") if "model" not in p.name
)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_loads(path: Path):
    recipe = Recipe.from_yaml(path)
    assert recipe.stages and all(s.steps > 0 for s in recipe.stages)


@pytest.mark.parametrize(
    ("name", "layer", "channels"),
    [("model.yaml", "stride02+stride08", 56)],
)
def test_seeing_models_read_their_layers(name: str, layer: str, channels: int):
    cfg = VideoLLMConfig.from_yaml(REPO / "configs" / "seeing" / name)
    assert cfg.vision.feature_layer == layer
    spec = tower_spec(cfg.vision.packaged)
    assert spec.layer(layer)[1:] == (8, channels)
    assert spec.grid(cfg.sampling.image_size, layer) == 14  # 14 x 14, pooled by 4 -> 16 tokens a frame
    assert cfg.connector.pool == 4
