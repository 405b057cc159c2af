"""Training: losses, data mixtures, resumable data path, recipes, the staged trainer, DDP / FSDP2.

    from sparrow.train import Recipe, RunOptions, train
    summary = train(Recipe.from_yaml("configs/tiny/apollo-3stage.yaml"), RunOptions(out=Path("runs/a")))

Losses live in ``sparrow.train.losses`` (``cross_entropy``, ``tailr_loss``, ``AdaTaiLr``). Names load
lazily so that importing the package stays cheap. See docs/train.md.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "cross_entropy": "sparrow.train.losses",
    "tailr_loss": "sparrow.train.losses",
    "AdaTaiLr": "sparrow.train.losses",
    "Mixture": "sparrow.train.mixture",
    "MixtureConfig": "sparrow.train.mixture",
    "SourceConfig": "sparrow.train.mixture",
    "MixtureError": "sparrow.train.mixture",
    "Recipe": "sparrow.train.recipe",
    "StageConfig": "sparrow.train.recipe",
    "LossConfig": "sparrow.train.recipe",
    "RecipeError": "sparrow.train.recipe",
    "RunOptions": "sparrow.train.trainer",
    "TrainError": "sparrow.train.trainer",
    "train": "sparrow.train.trainer",
    "read_metrics": "sparrow.train.trainer",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sparrow.train' has no attribute {name!r}")
