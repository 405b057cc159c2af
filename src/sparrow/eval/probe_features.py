"""A frozen vision tower's features per layer, for probing and experiments.

``resolve_tower`` turns what a user names (a packaged tower's name, a model YAML, a checkpoint folder, a
config object or a built tower) into one tower module; ``tower_layers`` lists the layers it offers;
``layer_features`` runs it once and returns every requested layer as ``(N, h, w, C)``; ``frame_features``
does that for uint8 frames and pools each layer to one vector per frame (mean and max over the grid).

Layer names sort in depth order:

- packaged CNN (EfficientNet-Lite0): ``stride02`` ... ``stride32`` are the outputs of the last block at
  each total stride (channels 16, 24, 40, 112, 320 for Lite0) and ``stride32-head`` is the 1x1 head
  convolution whose output the model's connector reads (1280 channels);
- Hugging Face towers: ``hidden00`` (the patch embeddings) ... ``hiddenNN`` (``hidden_states[i]``) and
  ``last`` (``last_hidden_state``, after the final LayerNorm where the tower has one).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

POOLS = ("mean", "max", "meanmax")


class ProbeError(ValueError):
    """A tower, layer or world the probe cannot use (one line, saying what to pass instead)."""


def resolve_tower(spec: Any, dtype: torch.dtype = torch.float32) -> nn.Module:
    """One tower module from: a built tower (``VisionTower`` / ``CNNTower``) or ``VisionEncoder`` (its
    primary tower), a ``VisionConfig`` or ``VideoLLMConfig``, a checkpoint folder (its saved tower), a
    model YAML file, or a packaged tower's name (``"efficientnet-lite0"``, ImageNet weights)."""
    from sparrow.model.config import VideoLLMConfig, VisionConfig
    from sparrow.model.packaged_specs import TOWERS
    from sparrow.model.vision import build_tower

    if isinstance(spec, nn.Module):
        return spec.tower if hasattr(spec, "tower") and isinstance(spec.tower, nn.Module) else spec
    if isinstance(spec, VideoLLMConfig):
        spec = spec.vision
    if isinstance(spec, VisionConfig):
        return build_tower(spec, dtype)
    if isinstance(spec, str) and spec in TOWERS:
        return build_tower(VisionConfig(packaged=spec), dtype)
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if (path / "config.json").is_file():
            from sparrow.model.checkpoint import read_checkpoint_config

            return build_tower(read_checkpoint_config(path).vision, dtype)
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            return build_tower(VideoLLMConfig.from_yaml(path).vision, dtype)
        raise ProbeError(
            f"{str(spec)!r} is neither a packaged tower ({', '.join(TOWERS)}), a checkpoint folder nor a "
            "model YAML file"
        )
    raise ProbeError(f"cannot make a vision tower from a {type(spec).__name__}")


def _cnn_stages(tower: nn.Module) -> dict[str, int]:
    """``strideNN`` -> index of the last block at that total stride (the stem halves the input)."""
    stride, out = 2, {}
    for i, block in enumerate(tower.model.net._blocks):
        s = block._block_args.stride
        stride *= int(s[0] if isinstance(s, (list, tuple)) else s)
        out[f"stride{stride:02d}"] = i
    return out


def _is_cnn(tower: nn.Module) -> bool:
    return hasattr(tower, "model") and hasattr(getattr(tower.model, "net", None), "_blocks")


def tower_layers(tower: nn.Module) -> list[str]:
    """The layer names ``layer_features`` accepts for ``tower``, shallow to deep."""
    if _is_cnn(tower):
        return [*_cnn_stages(tower), "stride32-head"]
    n = int(getattr(tower.model.config, "num_hidden_layers", 0))
    return [f"hidden{i:02d}" for i in range(n + 1)] + ["last"]


def _check_layers(tower: nn.Module, layers: Sequence[str] | None) -> list[str]:
    known = tower_layers(tower)
    if layers is None:
        return known
    bad = [x for x in layers if x not in known]
    if bad:
        raise ProbeError(f"unknown layer(s) {', '.join(bad)}; this tower has {', '.join(known)}")
    return list(layers)


def _to_grid(h: torch.Tensor, size: int, patch: int) -> torch.Tensor:
    """HF tokens ``(N, L, C)`` -> ``(N, g, g, C)``, dropping a class token when there is one."""
    grid = size // patch
    if h.shape[1] == grid * grid + 1:
        h = h[:, 1:]
    return h.reshape(h.shape[0], grid, grid, h.shape[-1])


@torch.no_grad()
def layer_features(
    tower: nn.Module, pixel_values: torch.Tensor, layers: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """``{layer: (N, h, w, C)}`` for normalised frames ``pixel_values (N, 3, S, S)``, in one forward pass
    of the tower in eval mode (its mode is restored)."""
    layers = _check_layers(tower, layers)
    was_training = tower.training
    tower.eval()
    try:
        if _is_cnn(tower):
            stages = _cnn_stages(tower)
            blocks = tower.model.net._blocks
            got: dict[str, torch.Tensor] = {}
            hooks = [
                blocks[stages[name]].register_forward_hook(
                    lambda _m, _i, out, name=name: got.__setitem__(name, out.permute(0, 2, 3, 1))
                )
                for name in layers
                if name in stages
            ]
            try:
                head = tower(pixel_values)
            finally:
                for h in hooks:
                    h.remove()
            got["stride32-head"] = head
            return {name: got[name] for name in layers}
        size = pixel_values.shape[-1]
        kwargs = {"interpolate_pos_encoding": True} if size != tower.image_size else {}
        out = tower.model(pixel_values=pixel_values, output_hidden_states=True, **kwargs)
        feats = {}
        for name in layers:
            h = out.last_hidden_state if name == "last" else out.hidden_states[int(name[len("hidden") :])]
            feats[name] = _to_grid(h, size, tower.patch_size)
        return feats
    finally:
        tower.train(was_training)


def normalise(tower: nn.Module, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames ``(N, S, S, 3)`` -> the tower's input ``(N, 3, S, S)`` (as the Processor builds it)."""
    p = next(tower.parameters())
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(p.device).permute(0, 3, 1, 2).float() / 255.0
    return ((x - tower.mean.float()) / tower.std.float()).to(p.dtype)


def pool(feats: torch.Tensor, how: str = "meanmax") -> np.ndarray:
    """``(N, h, w, C)`` -> ``(N, C)`` (mean or max over the grid) or ``(N, 2C)`` (both)."""
    if how not in POOLS:
        raise ProbeError(f"pool must be one of {', '.join(POOLS)}, got {how!r}")
    flat = feats.float().flatten(1, 2)
    parts = {"mean": [flat.mean(1)], "max": [flat.amax(1)], "meanmax": [flat.mean(1), flat.amax(1)]}[how]
    return torch.cat(parts, dim=1).cpu().numpy()


def frame_features(
    tower: nn.Module,
    frames: np.ndarray,
    layers: Sequence[str] | None = None,
    how: str = "meanmax",
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """``{layer: (N, D)}``: each uint8 frame ``(N, S, S, 3)`` through the tower, each layer pooled."""
    layers = _check_layers(tower, layers)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    for start in range(0, len(frames), batch_size):
        feats = layer_features(tower, normalise(tower, frames[start : start + batch_size]), layers)
        for name in layers:
            chunks[name].append(pool(feats[name], how))
    return {name: np.concatenate(c) if c else np.zeros((0, 0), np.float32) for name, c in chunks.items()}
