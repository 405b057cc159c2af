"""The checkpoint on disk: writing it, reading its config and its connector weights.

Layout: ``config.json`` (Sparrow config, paths relative to the directory), ``vision/``, ``vision2/``
and ``lm/`` (plain Hugging Face checkpoints, safetensors), ``connector.safetensors``, the tokenizer
files, and with LoRA ``adapters.safetensors`` (the adapter weights; their settings are in
``config.json`` under ``adapters``; the base weights are saved under their usual names, unmerged).
Nothing is ever unpickled when loading. ``sparrow.model.load_pretrained`` builds the
model and processor from it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from sparrow.hf_logging import quiet_hf
from sparrow.io import atomic_write_text
from sparrow.model.config import ConfigError, VideoLLMConfig
from sparrow.model.lora import (
    AdapterConfig,
    adapter_state_dict,
    base_state_dict,
    load_adapter_state,
    tuner_layers,
)
from sparrow.model.tokenizer import tokenizer_for

CONFIG_NAME = "config.json"
CONNECTOR_WEIGHTS = "connector.safetensors"
ADAPTER_WEIGHTS = "adapters.safetensors"
FORMAT_VERSION = 1


def save_checkpoint(model: Any, out_dir: str | os.PathLike, processor: Any = None) -> Path:
    """Write ``model`` (a ``VideoLLM``) to ``out_dir``. ``processor`` supplies the tokenizer and
    sampling settings; without it the model config's tokenizer is loaded and saved."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    adapters = dict(getattr(model, "adapters", {}))
    with quiet_hf():
        for hf_model, sub in ((model.vision.tower.model, "vision"), (model.lm, "lm")):
            _save_hf(hf_model, out / sub)
        if model.vision.tower2 is not None:
            _save_hf(model.vision.tower2.model, out / "vision2")
    state = {k: v.detach().contiguous().cpu() for k, v in base_state_dict(model.connector).items()}
    save_file(state, str(out / CONNECTOR_WEIGHTS), metadata={"format": "pt"})
    if adapters:
        save_file(adapter_state_dict(model), str(out / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    else:
        (out / ADAPTER_WEIGHTS).unlink(missing_ok=True)  # an earlier save into this directory had some

    cfg = copy.deepcopy(processor.cfg if processor is not None else model.cfg)
    cfg.connector, cfg.dtype = model.cfg.connector, model.cfg.dtype
    cfg.vision.path, cfg.vision.config = "vision", None
    if cfg.vision2 is not None:
        cfg.vision2.path, cfg.vision2.config = "vision2", None
    cfg.lm.path, cfg.lm.config = "lm", None
    cfg.tokenizer = "."
    tok = processor.tokenizer if processor is not None else tokenizer_for(model.cfg)
    tok.save_pretrained(str(out))
    meta = {
        "sparrow_format": FORMAT_VERSION,
        "visual_token_id": model.visual_token_id,
        "model": cfg.to_dict(),
    }
    if adapters:
        meta["adapters"] = {part: a.to_dict() for part, a in adapters.items()}
    atomic_write_text(out / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    return out


def _save_hf(hf_model: Any, out: Path) -> None:
    """A transformers model as a plain checkpoint; with adapters, the base weights under their names."""
    if tuner_layers(hf_model):
        hf_model.save_pretrained(out, state_dict=base_state_dict(hf_model))
    else:
        hf_model.save_pretrained(out)


def read_checkpoint_config(ckpt_dir: str | os.PathLike) -> VideoLLMConfig:
    """The config of a saved checkpoint with its relative paths resolved against the directory."""
    d = Path(ckpt_dir)
    path = d / CONFIG_NAME
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"not a Sparrow checkpoint: cannot read {str(path)!r} ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{str(path)!r} is not valid JSON: {e.msg}") from e
    if not isinstance(meta, dict) or "model" not in meta:
        raise ConfigError(f"{str(path)!r} is not a Sparrow checkpoint config (no 'model' key)")
    cfg = VideoLLMConfig.from_dict(meta["model"])
    cfg.resolve_paths(d)
    return cfg


def load_connector(model: Any, ckpt_dir: str | os.PathLike) -> None:
    """Load the saved connector weights into ``model.connector`` (strict: every key must match)."""
    state = load_file(str(Path(ckpt_dir) / CONNECTOR_WEIGHTS))
    model.connector.load_state_dict(state, strict=True)


def read_checkpoint_adapters(ckpt_dir: str | os.PathLike) -> dict[str, AdapterConfig]:
    """The LoRA settings saved with a checkpoint, by part (empty without adapters)."""
    path = Path(ckpt_dir) / CONFIG_NAME
    meta = json.loads(path.read_text(encoding="utf-8"))
    saved = meta.get("adapters") or {}
    return {part: AdapterConfig.from_dict(d, f"{path}: adapters of {part}") for part, d in saved.items()}


def load_adapters(model: Any, ckpt_dir: str | os.PathLike) -> None:
    """Inject the checkpoint's LoRA adapters into ``model`` (base weights already loaded) and load
    their weights from ``adapters.safetensors``; a checkpoint without adapters is a no-op."""
    adapters = read_checkpoint_adapters(ckpt_dir)
    if not adapters:
        return
    path = Path(ckpt_dir) / ADAPTER_WEIGHTS
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(ckpt_dir)!r} names adapters but has no {ADAPTER_WEIGHTS}")
    load_adapter_state(model, adapters, load_file(str(path)))
