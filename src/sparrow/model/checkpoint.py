"""The checkpoint on disk: writing it, reading its config and its connector weights.

Layout: ``config.json`` (Sparrow config, paths relative to the directory), ``vision/``, ``vision2/``
and ``lm/`` (plain Hugging Face checkpoints, safetensors), ``connector.safetensors``, and the
tokenizer files. Nothing is ever unpickled when loading. ``sparrow.model.load_pretrained`` builds the
model and processor from it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from sparrow.io import atomic_write_text
from sparrow.model.config import ConfigError, VideoLLMConfig
from sparrow.model.tokenizer import load_tokenizer
from sparrow.model.vision import quiet_hf

CONFIG_NAME = "config.json"
CONNECTOR_WEIGHTS = "connector.safetensors"
FORMAT_VERSION = 1


def save_checkpoint(model: Any, out_dir: str | os.PathLike, processor: Any = None) -> Path:
    """Write ``model`` (a ``VideoLLM``) to ``out_dir``. ``processor`` supplies the tokenizer and
    sampling settings; without it the model config's tokenizer is loaded and saved."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_hf():
        model.vision.tower.model.save_pretrained(out / "vision")
        if model.vision.tower2 is not None:
            model.vision.tower2.model.save_pretrained(out / "vision2")
        model.lm.save_pretrained(out / "lm")
    state = {k: v.detach().contiguous().cpu() for k, v in model.connector.state_dict().items()}
    save_file(state, str(out / CONNECTOR_WEIGHTS), metadata={"format": "pt"})

    cfg = copy.deepcopy(processor.cfg if processor is not None else model.cfg)
    cfg.connector, cfg.dtype = model.cfg.connector, model.cfg.dtype
    cfg.vision.path, cfg.vision.config = "vision", None
    if cfg.vision2 is not None:
        cfg.vision2.path, cfg.vision2.config = "vision2", None
    cfg.lm.path, cfg.lm.config = "lm", None
    cfg.tokenizer = "."
    tok = (
        processor.tokenizer
        if processor is not None
        else load_tokenizer(model.cfg.tokenizer, model.cfg.lm.path, model.cfg.visual_token)
    )
    tok.save_pretrained(str(out))
    meta = {
        "sparrow_format": FORMAT_VERSION,
        "visual_token_id": model.visual_token_id,
        "model": cfg.to_dict(),
    }
    atomic_write_text(out / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    return out


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
    for part in (cfg.vision, cfg.vision2, cfg.lm):
        if part is not None and part.path and not Path(part.path).is_absolute():
            part.path = str((d / part.path).resolve())
    if cfg.tokenizer not in (None, "tiny") and not Path(cfg.tokenizer).is_absolute():
        cfg.tokenizer = str((d / cfg.tokenizer).resolve())
    return cfg


def load_connector(model: Any, ckpt_dir: str | os.PathLike) -> None:
    """Load the saved connector weights into ``model.connector`` (strict: every key must match)."""
    state = load_file(str(Path(ckpt_dir) / CONNECTOR_WEIGHTS))
    model.connector.load_state_dict(state, strict=True)
