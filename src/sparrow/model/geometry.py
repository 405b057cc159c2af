"""What a model config's backbones are on disk: their Hugging Face configs, and the geometry that
follows (input size, feature grid, frame size, visual tokens per group).

``config.py`` only describes a model; everything here may read files: a backbone's ``config.json``,
a saved packaged tower's ``sparrow_tower.json``, or a packaged LM's folder (prepared from its wheel
on first use, ``model/packaged.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sparrow.model.config import LMConfig, VideoLLMConfig, VisionConfig
from sparrow.model.errors import ConfigError
from sparrow.model.packaged import lm_dir
from sparrow.model.packaged_specs import tower_spec

TOWER_JSON = "sparrow_tower.json"  # what a saved packaged tower is (written by cnn_tower.PackagedCNN)

DEFAULT_VISION_TYPE = "siglip_vision_model"
DEFAULT_LM_TYPE = "qwen2"


def hf_config(part: VisionConfig | LMConfig, default_type: str | None = None) -> Any:
    """The Hugging Face config object of a backbone: read from its local ``path`` or built from the
    ``config`` dict. A composite checkpoint (e.g. a full SigLIP with a text tower) yields its
    ``vision_config``."""
    from transformers import AutoConfig

    if default_type is None:
        default_type = DEFAULT_VISION_TYPE if isinstance(part, VisionConfig) else DEFAULT_LM_TYPE
    if isinstance(part, VisionConfig) and part.packaged:
        raise ConfigError(f"the packaged tower {part.packaged!r} has no Hugging Face config")
    path = lm_dir(part) if isinstance(part, LMConfig) else part.path
    if path:
        if not Path(path).is_dir():
            raise ConfigError(f"backbone path {path!r} is not a local directory")
        conf = AutoConfig.from_pretrained(path, local_files_only=True)
        if isinstance(part, VisionConfig) and getattr(conf, "vision_config", None) is not None:
            conf = conf.vision_config
        return conf
    d = dict(part.config or {})
    model_type = d.pop("model_type", default_type)
    try:
        return AutoConfig.for_model(model_type, **d)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"cannot build a {model_type!r} config: {e}") from e


def vision_geometry(part: VisionConfig) -> tuple[int, int]:
    """(input size, feature-grid side at that size) of a vision tower, from its config."""
    if part.packaged:
        spec = tower_spec(part.packaged)
        size = packaged_image_size(part)
        return size, spec.grid(size, part.feature_layer)
    conf = hf_config(part)
    image_size = getattr(conf, "image_size", None)
    patch = getattr(conf, "patch_size", None)
    if isinstance(image_size, (list, tuple)):
        image_size = image_size[0]
    if isinstance(patch, (list, tuple)):
        patch = patch[0]
    if not image_size or not patch:
        raise ConfigError("vision tower config needs image_size and patch_size")
    return int(image_size), int(image_size) // int(patch)


def saved_image_size(path: str | os.PathLike) -> int | None:
    """The input size a saved tower folder records (None when it records none)."""
    try:
        return int(json.loads((Path(path) / TOWER_JSON).read_text(encoding="utf-8"))["image_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def packaged_image_size(part: VisionConfig) -> int:
    """A packaged tower's input size: ``config.image_size``, else what a saved tower folder records,
    else the size it was trained at."""
    size = (part.config or {}).get("image_size")
    if size is None and part.path:
        size = saved_image_size(part.path)
    return int(size or tower_spec(str(part.packaged)).image_size)


def feature_grid(part: VisionConfig, size: int) -> int:
    """Side of the feature grid a tower gives for ``size`` px frames: size / patch for a ViT, rounded
    up per stride for a CNN (112 px -> 4 x 4 for EfficientNet-Lite0)."""
    if part.packaged:
        return tower_spec(part.packaged).grid(size, part.feature_layer)
    image_size, grid = vision_geometry(part)
    return size // (image_size // grid)


def frame_size(cfg: VideoLLMConfig) -> int:
    """The side frames are given to the vision tower at: ``sampling.image_size`` or the tower's own."""
    return cfg.sampling.image_size or vision_geometry(cfg.vision)[0]


def tokens_per_group(cfg: VideoLLMConfig) -> int:
    """How many visual tokens the connector emits per frame (or per clip)."""
    c = cfg.connector
    if c.type == "perceiver":
        return c.resampler_n_latents
    grid = feature_grid(cfg.vision, frame_size(cfg))
    if c.type == "mlp_pool":
        side = -(-grid // c.pool)
        return side * side
    if grid % c.shuffle_factor:
        raise ConfigError(
            f"pixel_shuffle: feature grid {grid} is not divisible by shuffle_factor {c.shuffle_factor}"
        )
    side = grid // c.shuffle_factor
    return side * side
