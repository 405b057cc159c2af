"""Build or load a model and its processor through the adapter that serves it.

``build(spec)`` makes an HF-native model from an ``HFModelSpec`` (a checkpoint folder, or a config dict
with random weights); ``load_pretrained(path)`` loads any checkpoint Sparrow can serve: its own
``VideoLLM`` format (``sparrow.model.load_pretrained``), a Sparrow-saved HF-native checkpoint (with its
sampling and LoRA adapters), or a plain transformers folder of a supported family.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sparrow.adapters.checkpoint import load_lora, spec_for_checkpoint
from sparrow.adapters.idefics3 import Idefics3Model, Idefics3Processor
from sparrow.adapters.llava_onevision import LlavaOnevisionModel, LlavaOnevisionProcessor
from sparrow.adapters.model import HFVideoLM
from sparrow.adapters.processor import HFProcessor
from sparrow.adapters.qwen2_vl import Qwen2VLModel, Qwen2VLProcessor
from sparrow.adapters.spec import AdapterError, HFModelSpec, is_hf_checkpoint
from sparrow.adapters.tokens import family_tokenizer
from sparrow.hf_logging import quiet_hf
from sparrow.model import load_pretrained as load_videollm
from sparrow.model.lora import copy_adapters
from sparrow.model.videollm import merge_checkpoint as merge_videollm

ADAPTERS: dict[str, tuple[type[HFVideoLM], type[HFProcessor]]] = {
    "qwen2_vl": (Qwen2VLModel, Qwen2VLProcessor),
    "llava_onevision": (LlavaOnevisionModel, LlavaOnevisionProcessor),
    "idefics3": (Idefics3Model, Idefics3Processor),
}

# The token-id fields of each family's config, filled from the tokenizer for a config-dict model.
_TOKEN_FIELDS = {
    "qwen2_vl": {
        "image_token_id": "<|image_pad|>",
        "video_token_id": "<|video_pad|>",
        "vision_start_token_id": "<|vision_start|>",
        "vision_end_token_id": "<|vision_end|>",
    },
    "llava_onevision": {"image_token_index": "<image>", "video_token_index": "<video>"},
    "idefics3": {"image_token_id": "<image>"},
}


def _hf_config(spec: HFModelSpec, tok: Any) -> Any:
    from transformers import AutoConfig

    d = dict(spec.config or {})
    for key, token in _TOKEN_FIELDS[spec.family].items():
        d.setdefault(key, int(tok.convert_tokens_to_ids(token)))
    text = dict(d.get("text_config") or {})
    text.setdefault("vocab_size", len(tok))
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        text.setdefault(key, None)
    d["text_config"] = text
    model_type = d.pop("model_type")
    return AutoConfig.for_model(model_type, **d)


def build(spec: HFModelSpec, decode_threads: int = 0) -> tuple[HFVideoLM, HFProcessor]:
    """The model (eval mode off: as built) and processor an ``HFModelSpec`` names."""
    from transformers import AutoModelForImageTextToText

    spec.validate()
    model_cls, proc_cls = ADAPTERS[spec.family]
    tok = family_tokenizer(spec.tokenizer, spec.path, spec.family)
    dtype = getattr(torch, spec.dtype)
    with quiet_hf():
        if spec.path is not None:
            hf = AutoModelForImageTextToText.from_pretrained(
                spec.path,
                local_files_only=True,
                use_safetensors=True,
                dtype=dtype,
                attn_implementation=spec.attn_implementation,
            )
        else:
            conf = _hf_config(spec, tok)
            conf._attn_implementation = spec.attn_implementation
            hf = AutoModelForImageTextToText.from_config(conf, dtype=dtype)
    if len(tok) > hf.get_input_embeddings().num_embeddings:
        raise AdapterError(f"the tokenizer has {len(tok)} tokens, the model's embedding table fewer")
    processor = proc_cls(spec, tok, hf.config, decode_threads=decode_threads)
    return model_cls(hf, tok, spec), processor


def load_pretrained(
    ckpt_dir: str | os.PathLike, device: str | torch.device | None = None, dtype: str | None = None
) -> tuple[Any, Any]:
    """``(model, processor)`` of any checkpoint Sparrow serves, in eval mode."""
    if not is_hf_checkpoint(ckpt_dir):
        return load_videollm(ckpt_dir, device=device, dtype=dtype)
    model, processor = build(spec_for_checkpoint(ckpt_dir, dtype))
    load_lora(model, ckpt_dir)
    if device is not None:
        model.to(device)
    model.eval()
    return model, processor


def build_from_recipe(model: dict[str, Any], base_dir: str | Path | None) -> tuple[HFVideoLM, HFProcessor]:
    """A recipe's ``model:`` mapping naming an HF-native model."""
    return build(HFModelSpec.from_dict(model, base_dir))


def lm_width(model: Any) -> int:
    """The LM's hidden size of any served model (the trainer's precision rule reads it)."""
    if isinstance(model, HFVideoLM):
        return model.hidden_size
    return int(model.lm.config.hidden_size)


def load_weights_into(model: Any, ckpt_dir: str | os.PathLike) -> None:
    """Copy a checkpoint's weights (and LoRA layers) into an already built ``model`` of the same kind."""
    with torch.random.fork_rng(devices=[]):
        loaded, _ = load_pretrained(ckpt_dir)
        copy_adapters(loaded, model)
    model.load_state_dict(loaded.state_dict(), strict=True)


def merge_checkpoint(ckpt_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Export ``ckpt_dir`` with its LoRA adapters merged into the base weights, whichever format it is
    (HF-native: a plain transformers folder without ``peft/``)."""
    if not is_hf_checkpoint(ckpt_dir):
        return merge_videollm(ckpt_dir, out_dir)
    model, processor = load_pretrained(ckpt_dir)
    return model.save_pretrained(out_dir, processor=processor, merge_lora=True)
