"""Convert a GGUF causal LM (weights, tokenizer and chat template in one file) into an ordinary
Hugging Face folder, once.

transformers reads GGUF directly but de-quantizes on every load (~15-40 s for SmolLM2-135M on a CPU);
the converted fp32 folder reloads in well under a second. The folder appears atomically (written
under a temporary name, then renamed), so an interrupted or concurrent preparation never leaves a
half-written model that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MARKER = "sparrow-part.json"


class ConversionError(RuntimeError):
    """A GGUF file could not be turned into a Hugging Face folder."""


def _source(gguf: Path) -> dict[str, Any]:
    """What identifies the converted file in the marker (its name and size)."""
    return {"source": gguf.name, "source_bytes": gguf.stat().st_size}


def _marker(gguf: Path) -> dict[str, Any]:
    import transformers

    return {**_source(gguf), "transformers": transformers.__version__}


def converted(gguf: Path, dest: Path) -> bool:
    """Whether ``dest`` already holds the conversion of this GGUF file (same name and size). Cheap: it
    imports nothing (``sparrow models`` asks it for every part)."""
    try:
        done = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(done.get(k) == v for k, v in _source(gguf).items())


def _save(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A model loaded from GGUF remembers its quantizer and refuses save_pretrained; the weights are
    # already de-quantized to fp32, so both are dropped.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if not tokenizer.chat_template:
        raise ConversionError(f"{gguf.name} carries no chat template")


def convert_gguf_lm(gguf: Path, dest: Path) -> bool:
    """Write the HF folder for ``gguf`` at ``dest``; returns False (no work) when it is already there."""
    gguf, dest = Path(gguf), Path(dest)
    if converted(gguf, dest):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        _save(gguf, tmp)
        (tmp / MARKER).write_text(json.dumps(_marker(gguf), indent=1) + "\n", encoding="utf-8")
        if dest.exists():  # a stale conversion (another source size): set it aside, then remove it
            stale = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
            os.replace(dest, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not converted(gguf, dest):  # lost a race to a concurrent preparation only if it won
                raise
    except Exception as e:
        if isinstance(e, ConversionError):
            raise
        raise ConversionError(f"converting {gguf.name} failed: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True
