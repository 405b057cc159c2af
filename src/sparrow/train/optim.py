"""What a stage optimises and how: which parts train, AdamW per part, warm-up + cosine, and the loss.

Frozen parts get no gradient, are not in the optimizer and run in eval mode, so their weights stay
bit-identical. A part trained through LoRA keeps its base weights frozen too: only its adapters are
trainable (and in the optimizer). Weight decay applies to matrices only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from sparrow.model.lora import LoraError, add_adapters, mark_adapters_trainable, merge_adapters
from sparrow.train.losses import AdaTaiLr, cross_entropy, tailr_loss
from sparrow.train.recipe import PARTS, LossConfig, RecipeError, StageConfig
from sparrow.train.seeds import derive_seed

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def lr_factor(step: int, total: int, warmup: int, min_ratio: float = 0.0) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_trainable(model: nn.Module, stage: StageConfig, seed: int = 0) -> dict[str, nn.Module]:
    """Unfreeze the stage's parts, freeze the others; returns the model's parts by name.

    A part with ``lora`` gets adapters (or continues the ones an earlier stage gave it, when the
    settings are the same) and only those train; a part trained fully that carries adapters from an
    earlier stage has them merged first. New adapters start from
    ``derive_seed(seed, "lora", stage name, part)``."""
    adapters = getattr(model, "adapters", None)
    for part, cfg in stage.lora.items():
        try:
            add_adapters(model, part, cfg, seed=derive_seed(seed, "lora", stage.name, part))
        except LoraError as e:
            raise RecipeError(f"stage {stage.name!r}: {e}") from e
    if adapters:
        merge_adapters(model, [p for p in stage.trainable if p in adapters and p not in stage.lora])
    parts = model.parts()
    for name in PARTS:
        if name not in parts:
            continue
        on = name in stage.trainable
        parts[name].requires_grad_(on)
        parts[name].train(on)  # frozen parts run in eval mode (no dropout noise in features)
        if on and name in stage.lora:
            mark_adapters_trainable(parts[name])
    return parts


def build_optimizer(stage: StageConfig, parts: dict[str, nn.Module]) -> torch.optim.Optimizer:
    """AdamW with two groups per trainable part (decayed matrices, undecayed vectors), tagged ``part``."""
    groups = []
    for name in stage.trainable:
        decay, no_decay = [], []
        for p in parts[name].parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        lr = stage.lr[name]
        groups.append({"params": decay, "lr": lr, "weight_decay": stage.weight_decay, "part": name})
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "part": name})
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise RecipeError(f"stage {stage.name!r}: nothing to train (its parts have no parameters)")
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)


def build_scheduler(
    optimizer: torch.optim.Optimizer, stage: StageConfig, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = math.ceil(stage.warmup_ratio * steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps, warmup, stage.min_lr_ratio)
    )


def build_loss(lc: LossConfig) -> tuple[LossFn, AdaTaiLr | None]:
    """The stage's token loss (summed over tokens) and, for AdaTaiLr, the object whose state a
    checkpoint saves and whose ``step()`` ``train_step`` calls once per optimizer step."""
    if lc.name == "ce":
        return (lambda z, y: cross_entropy(z, y, label_smoothing=lc.label_smoothing, reduction="sum")), None
    if lc.name == "tailr":
        return (
            lambda z, y: tailr_loss(z, y, lc.gamma, lc.min_weight, lc.label_smoothing, reduction="sum")
        ), None
    ada = AdaTaiLr(
        lam=lc.lam,
        momentum=lc.momentum,
        gamma=lc.gamma,
        min_weight=lc.min_weight,
        label_smoothing=lc.label_smoothing,
        reduction="sum",
    )
    return ada, ada
