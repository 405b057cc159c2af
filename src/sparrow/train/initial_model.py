"""The model a training run starts from, built in one place so that whoever needs "the untrained model"
(the demo's reference row) gets exactly the weights step 0 of training sees."""

from __future__ import annotations

from typing import Any

import torch

from sparrow.adapters import AdapterError, build_from_recipe, is_hf_model_mapping
from sparrow.adapters import load_pretrained as load_any
from sparrow.model import Processor, VideoLLM
from sparrow.train.recipe import Recipe
from sparrow.train.rundir import TrainError
from sparrow.train.seeds import derive_seed


def initial_model(recipe: Recipe) -> tuple[Any, Any]:
    """``(model, processor)`` before the first step: ``init_from``'s checkpoint, a Hugging Face model the
    adapters build, or a fresh ``VideoLLM``. Seeds torch's global generator with
    ``derive_seed(recipe.seed, "init")`` first, the same on every rank, so random-init weights are
    identical before DDP / FSDP sees them (wrap the call in ``torch.random.fork_rng`` to leave the
    caller's stream alone)."""
    torch.manual_seed(derive_seed(recipe.seed, "init"))
    if recipe.init_from:
        return load_any(recipe.resolve(recipe.init_from))
    if is_hf_model_mapping(recipe.model):
        try:
            return build_from_recipe(recipe.model, recipe.base_dir)
        except AdapterError as e:
            raise TrainError(f"model: {e}") from e
    cfg = recipe.model_config()
    if cfg is None:
        raise TrainError("the recipe names neither a model nor init_from")
    processor = Processor(cfg)
    return VideoLLM(cfg, tokenizer=processor.tokenizer), processor
