"""The checkpoint of an HF-native model: a folder transformers' own ``from_pretrained`` loads.

Layout: the transformers files (``config.json``, ``model.safetensors``, with unmerged LoRA the base
weights under their plain names), the tokenizer files, ``sparrow_adapter.json`` (Sparrow's frame sampling,
``max_length`` and the LoRA settings per part) and, with unmerged LoRA, ``adapters.safetensors`` (what
Sparrow reloads to resume) plus ``peft/``: the same adapters as a peft adapter folder
(``PeftModel.from_pretrained(model, "ckpt/peft")``). ``save_pretrained(merge_lora=True)`` / ``export``
fold the adapters in instead. Nothing is unpickled when loading.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sparrow.adapters.spec import ADAPTER_FILE, AdapterError, HFModelSpec
from sparrow.hf_logging import quiet_hf
from sparrow.io import atomic_write_text
from sparrow.model.lora import (
    AdapterConfig,
    adapter_state_dict,
    base_state_dict,
    load_adapter_state,
    merge_adapters,
    tuner_layers,
)

ADAPTER_WEIGHTS = "adapters.safetensors"
PEFT_DIR = "peft"
PROCESSOR_FILES = (
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
    "chat_template.json",
    "chat_template.jinja",
)
FORMAT_VERSION = 1


def save_checkpoint(
    model: Any, out_dir: str | os.PathLike, processor: Any = None, merge_lora: bool = False
) -> Path:
    """Write ``model`` (an ``HFVideoLM``) to ``out_dir``; ``processor`` supplies the tokenizer and the
    sampling. ``merge_lora``: save a merged copy (the model itself keeps its adapters)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if merge_lora and model.adapters:
        with torch.random.fork_rng(devices=[]):
            model = copy.deepcopy(model)
        merge_adapters(model)
    adapters = dict(model.adapters)
    with quiet_hf():
        model.hf.save_pretrained(out, state_dict=base_state_dict(model.hf))
    if processor is not None:
        processor.tokenizer.save_pretrained(str(out))
    _copy_processor_files(model.spec.path, out)
    spec = processor.cfg if processor is not None else model.spec
    meta = {
        "sparrow_adapter": FORMAT_VERSION,
        "family": model.family,
        "sampling": spec.to_dict()["sampling"],
        "max_length": spec.max_length,
        "adapters": {part: a.to_dict() for part, a in adapters.items()},
    }
    if adapters:
        save_file(adapter_state_dict(model), str(out / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        save_peft_folder(model, out / PEFT_DIR)
    else:
        (out / ADAPTER_WEIGHTS).unlink(missing_ok=True)
    atomic_write_text(out / ADAPTER_FILE, json.dumps(meta, indent=2) + "\n")
    return out


def _copy_processor_files(src: str | None, out: Path) -> None:
    """A real checkpoint's processor files travel with it (``AutoProcessor`` then loads the saved folder)."""
    if not src or Path(src).resolve() == out.resolve():
        return
    for name in PROCESSOR_FILES:
        f = Path(src) / name
        if f.is_file() and not (out / name).exists():
            shutil.copyfile(f, out / name)


def save_peft_folder(model: Any, out: Path) -> None:
    """The model's LoRA adapters as a peft adapter folder over the transformers model: keys
    ``base_model.model.<module path>.lora_A.weight`` and one ``LoraConfig`` whose target modules are
    the exact adapted paths (rank / alpha per part through peft's patterns)."""
    from peft import LoraConfig

    state: dict[str, torch.Tensor] = {}
    targets: list[str] = []
    ranks: dict[str, int] = {}
    alphas: dict[str, float] = {}
    first = next(iter(model.adapters.values()))
    for name, layer in tuner_layers(model.hf).items():
        part = _part_of(model, layer)
        cfg = model.adapters[part]
        targets.append(name)
        if (cfg.r, cfg.alpha) != (first.r, first.alpha):
            ranks[f"^{name}$"], alphas[f"^{name}$"] = cfg.r, cfg.alpha
        for key, value in layer.state_dict().items():
            if ".default." in f".{key}." and key.startswith("lora_"):
                state[f"base_model.model.{name}.{key.replace('.default', '')}"] = (
                    value.detach().contiguous().cpu()
                )
    out.mkdir(parents=True, exist_ok=True)
    lc = LoraConfig(
        r=first.r,
        lora_alpha=first.alpha,
        lora_dropout=float(first.dropout),
        target_modules=sorted(targets),
        rank_pattern=ranks,
        alpha_pattern=alphas,
    )
    lc.save_pretrained(str(out))
    save_file(state, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})


def _part_of(model: Any, layer: torch.nn.Module) -> str:
    for part, view in model.parts().items():
        if any(m is layer for m in view.modules()):
            return part
    raise AdapterError("a LoRA layer sits in no part")


def read_meta(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    """``sparrow_adapter.json`` of a Sparrow-saved checkpoint; empty for a plain transformers folder."""
    path = Path(ckpt_dir) / ADAPTER_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise AdapterError(f"{str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("sparrow_adapter") != FORMAT_VERSION:
        raise AdapterError(f"{str(path)!r}: not a version {FORMAT_VERSION} Sparrow adapter file")
    return meta


def spec_for_checkpoint(ckpt_dir: str | os.PathLike, dtype: str | None = None) -> HFModelSpec:
    meta = read_meta(ckpt_dir)
    d: dict[str, Any] = {"hf": str(ckpt_dir)}
    if meta:
        d["sampling"] = meta.get("sampling") or {}
        d["max_length"] = meta.get("max_length", 4096)
    if dtype is not None:
        d["dtype"] = dtype
    return HFModelSpec.from_dict(d)


def load_lora(model: Any, ckpt_dir: str | os.PathLike) -> None:
    """Inject and load the checkpoint's unmerged LoRA adapters (none: no-op)."""
    meta = read_meta(ckpt_dir)
    saved = meta.get("adapters") or {}
    if not saved:
        return
    adapters = {p: AdapterConfig.from_dict(d, f"{ckpt_dir}: adapters of {p}") for p, d in saved.items()}
    path = Path(ckpt_dir) / ADAPTER_WEIGHTS
    if not path.is_file():
        raise AdapterError(f"checkpoint {str(ckpt_dir)!r} names adapters but has no {ADAPTER_WEIGHTS}")
    load_adapter_state(model, adapters, load_file(str(path)))
