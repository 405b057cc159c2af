"""Tiny random configs of each HF-native family (tests, benchmarks): built offline from config dicts,
with Sparrow's tiny tokenizer (``tokenizer: tiny``). Each builds in well under a second on one core."""

from __future__ import annotations

import copy
from typing import Any

_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "tie_word_embeddings": False,
}

TINY: dict[str, dict[str, Any]] = {
    "qwen2_vl": {
        "model_type": "qwen2_vl",
        "vision_config": {
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        "text_config": {**_TEXT, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
    },
    "llava_onevision": {
        "model_type": "llava_onevision",
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 7,
        },
        "text_config": {"model_type": "qwen2", **_TEXT},
    },
    "idefics3": {
        "model_type": "idefics3",
        "scale_factor": 2,
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        "text_config": {"model_type": "llama", **_TEXT},
    },
}

# Frame sampling of the tiny models: few small frames (Qwen2-VL: 56 px = 2 x 2 merged tokens per patch).
TINY_SAMPLING: dict[str, dict[str, Any]] = {
    "qwen2_vl": {"image_size": 56, "max_frames": 4, "timestamps": "none", "header": False},
    "llava_onevision": {"max_frames": 4, "timestamps": "none", "header": False},
    "idefics3": {"max_frames": 4, "timestamps": "frame", "header": True},
}


def tiny_model(family: str, **overrides: Any) -> dict[str, Any]:
    """A recipe ``model:`` mapping of the tiny ``family`` model."""
    d = {
        "hf_config": copy.deepcopy(TINY[family]),
        "tokenizer": "tiny",
        "sampling": dict(TINY_SAMPLING[family]),
        "max_length": 1024,
    }
    d.update(overrides)
    return d
