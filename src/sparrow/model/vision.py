"""Vision encoder(s): towers that turn frames into patch-grid features.

A tower is any ``AutoModel`` vision model (SigLIP by default) or a packaged CNN
(``model/cnn_tower.py``, EfficientNet-Lite0 from its wheel); both give ``(N, h, w, C)``. An optional second tower's
features are resized (trilinear) to the primary's T x H x W grid and concatenated along channels, as
Apollo does with SigLIP + InternVideo2. Frames arrive normalised for the primary tower; the second
tower gets them re-normalised and resized to its own input size.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparrow.hf_logging import quiet_hf
from sparrow.model.cnn_tower import CNNTower
from sparrow.model.config import VisionConfig
from sparrow.model.errors import ConfigError
from sparrow.model.geometry import hf_config, vision_geometry


def _enable_hf_checkpointing(model: nn.Module) -> None:
    """Activation checkpointing of a transformers model, non-reentrant (works with frozen inputs)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _torch_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    if name is None or isinstance(name, torch.dtype):
        return name
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {name!r}") from None


def _load_tower(vcfg: VisionConfig, conf: Any, dtype: str | torch.dtype | None) -> nn.Module:
    from transformers import AutoModel

    # config= makes AutoModel pick the vision class even for a full (image + text) checkpoint;
    # use_safetensors: loading must never unpickle.
    return AutoModel.from_pretrained(
        vcfg.path,
        config=conf,
        local_files_only=True,
        use_safetensors=True,
        dtype=_torch_dtype(dtype) or torch.float32,
    )


class VisionTower(nn.Module):
    """One tower; ``forward(pixel_values (N, 3, S, S)) -> (N, grid, grid, C)``."""

    def __init__(self, vcfg: VisionConfig, dtype: str | torch.dtype | None = None):
        super().__init__()
        from transformers import AutoModel

        conf = hf_config(vcfg)
        conf._attn_implementation = vcfg.attn_implementation
        if hasattr(conf, "vision_use_head"):
            conf.vision_use_head = False  # SigLIP's pooling head: unused by a video-LLM, skip building it
        if vcfg.path:
            with quiet_hf():
                self.model = _load_tower(vcfg, conf, dtype)
        else:
            self.model = AutoModel.from_config(conf, dtype=_torch_dtype(dtype) or torch.float32)
        self.image_size, self.grid = vision_geometry(vcfg)
        self.patch_size = self.image_size // self.grid
        self._can_interpolate = "interpolate_pos_encoding" in inspect.signature(self.model.forward).parameters
        self.hidden_size = int(conf.hidden_size)
        self.feature_layer = vcfg.feature_layer
        self.register_buffer("mean", torch.tensor(vcfg.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(vcfg.image_std).view(1, 3, 1, 1), persistent=False)
        self._unused = self._find_unused_parameters()

    def _find_unused_parameters(self) -> list[str]:
        """Names of parameters the features do not depend on (a pooler, layers after ``feature_layer``).

        Under DDP an unused parameter makes ranks wait forever for its gradient, so ``forward`` ties
        these into the graph with weight zero. Found once with a one-frame forward pass. Names, not
        objects: FSDP2 replaces the parameter objects when it shards the model."""
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not named:
            return []
        dtype = named[0][1].dtype
        x = torch.zeros(1, 3, self.image_size, self.image_size, dtype=dtype)
        with torch.enable_grad():
            out = self.forward(x)
            grads = torch.autograd.grad(out.float().sum(), [p for _, p in named], allow_unused=True)
        return [n for (n, _), g in zip(named, grads, strict=True) if g is None]

    def grid_for(self, size: int) -> int:
        """Feature-grid side for ``size`` px frames."""
        return size // self.patch_size

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        want_hidden = self.feature_layer != -1
        kwargs = {}
        size = pixel_values.shape[-1]
        if size != self.image_size:
            # Frames decoded at another size (SamplingConfig.image_size): interpolate the position
            # embeddings, as SigLIP / CLIP allow, instead of resizing the frames again.
            if not self._can_interpolate:
                raise ValueError(f"this vision tower takes {self.image_size}px frames only, got {size}px")
            kwargs["interpolate_pos_encoding"] = True
        out = self.model(pixel_values=pixel_values, output_hidden_states=want_hidden, **kwargs)
        h = out.hidden_states[self.feature_layer] if want_hidden else out.last_hidden_state
        grid = size // self.patch_size
        n_patches = grid * grid
        if h.shape[1] == n_patches + 1:  # CLIP-like towers prepend a class token
            h = h[:, 1:]
        if h.shape[1] != n_patches:
            raise ValueError(f"vision tower returned {h.shape[1]} tokens, expected a {grid}x{grid} grid")
        h = h.reshape(h.shape[0], grid, grid, h.shape[-1])  # (N, grid, grid, C)
        if getattr(self, "_unused", None) and torch.is_grad_enabled():
            tie = sum(self.model.get_parameter(n).sum() for n in self._unused)
            h = h + 0.0 * tie.to(h.dtype)
        return h


def build_tower(vcfg: VisionConfig, dtype: str | torch.dtype | None = None) -> nn.Module:
    """The tower a config names: a packaged CNN or a Hugging Face vision model."""
    if vcfg.packaged:
        return CNNTower(vcfg, _torch_dtype(dtype) or torch.float32)
    return VisionTower(vcfg, dtype)


class VisionEncoder(nn.Module):
    """Primary tower plus optional second tower. ``forward`` -> ``(N, grid, grid, C1 [+ C2])``."""

    def __init__(self, vcfg: VisionConfig, vcfg2: VisionConfig | None = None, dtype: str | None = None):
        super().__init__()
        self.tower = build_tower(vcfg, dtype)
        self.tower2 = build_tower(vcfg2, dtype) if vcfg2 is not None else None
        self.image_size, self.grid = self.tower.image_size, self.tower.grid
        self.out_dim = self.tower.hidden_size + (self.tower2.hidden_size if self.tower2 is not None else 0)

    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def train(self, mode: bool = True) -> VisionEncoder:
        """A frozen encoder (no parameter requiring grad) stays in eval mode under ``model.train()``:
        its output is then a function of the frames alone (no dropout, BatchNorm statistics untouched),
        so the feature cache may serve it. Freeze first, then call ``train()``."""
        return super().train(mode and self.trainable())

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        feats = self.tower(pixel_values)
        if self.tower2 is None:
            return feats
        t2 = self.tower2
        # Undo the primary normalisation, resize to the second tower's input, apply its normalisation.
        x = pixel_values * self.tower.std.to(pixel_values.dtype) + self.tower.mean.to(pixel_values.dtype)
        if t2.image_size != self.image_size:
            x = F.interpolate(
                x, size=(t2.image_size, t2.image_size), mode="bilinear", antialias=True, align_corners=False
            )
        x = (x - t2.mean.to(x.dtype)) / t2.std.to(x.dtype)
        f2 = t2(x)  # (N, g2, g2, C2)
        # Treat the frames as the time axis: (1, C2, N, g2, g2) -> (1, C2, N, g, g). With equal
        # sizes trilinear interpolation is the identity, so a same-geometry pair is unchanged.
        v = f2.permute(3, 0, 1, 2).unsqueeze(0)
        grid = feats.shape[1]
        v = F.interpolate(v.float(), size=(feats.shape[0], grid, grid), mode="trilinear", align_corners=False)
        f2 = v.squeeze(0).permute(1, 2, 3, 0).to(feats.dtype)
        return torch.cat([feats, f2], dim=-1)

    def enable_gradient_checkpointing(self) -> None:
        for t in (self.tower, self.tower2):
            if t is not None and getattr(t.model, "supports_gradient_checkpointing", False):
                _enable_hf_checkpointing(t.model)
