"""The packaged parts a model config may name by ``packaged:``: which vision towers and LMs exist, and
the fixed facts of each tower (input size, strides, channels, normalisation).

Plain data, read by ``config.py`` to fill and check a config; preparing a part (wheel -> loadable
folder) is ``packaged.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparrow.model.errors import ConfigError


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
        ``-1`` / ``"head"`` is the head convolution's output, ``"strideNN"`` the last block at that stride,
        and ``"strideAA+strideBB"`` those blocks read together (channels concatenated on the deepest
        one's grid: colour from an early block beside shape from a later one)."""
        taps = [self._one(n) for n in self._names(name)]
        if len(taps) == 1:
            return taps[0]
        if any(block < 0 for block, _, _ in taps):
            raise PackagedPartError(f"{self.name}: the head cannot be combined with other layers ({name!r})")
        block, stride, _ = max(taps)
        return block, stride, sum(c for _, _, c in taps)

    def taps(self, name: int | str) -> list[int]:
        """The block indices a feature layer reads, shallowest first (``[-1]`` for the head)."""
        return sorted({self._one(n)[0] for n in self._names(name)})

    @staticmethod
    def _names(name: int | str) -> list[int | str]:
        if isinstance(name, str) and "+" in name:
            return [n.strip() for n in name.split("+")]
        return [name]

    def _one(self, name: int | str) -> tuple[int, int, int]:
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
