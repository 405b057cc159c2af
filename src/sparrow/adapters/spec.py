"""What names an HF-native video/image LLM: a local checkpoint folder or a config dict (tiny, random).

A recipe's ``model:`` section takes ``{hf: PATH}`` (a local transformers checkpoint of a supported
family) or ``{hf_config: {...}, family: ..., tokenizer: tiny}`` (random weights from a config dict, for
tests), with optional ``sampling`` (Sparrow's frame selection, ``SamplingConfig`` fields),
``max_length``, ``dtype`` and ``attn_implementation``. ``_component_: sparrow.adapters.<family>`` is
accepted as another spelling of ``family``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparrow.model.config import SamplingConfig
from sparrow.model.errors import ConfigError
from sparrow.paths import resolve_path
from sparrow.yamlio import unknown_keys

# transformers model_type -> the adapter family that serves it
FAMILIES = {
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_vl",
    "llava_onevision": "llava_onevision",
    "idefics3": "idefics3",
}
ADAPTER_FILE = "sparrow_adapter.json"  # written next to the HF files of a Sparrow-saved checkpoint


class AdapterError(ConfigError):
    """A model an adapter cannot serve, or inputs it cannot take; the message says what to change."""


@dataclass
class HFModelSpec:
    """An HF-native model for Sparrow. ``path``: a local checkpoint folder; ``config``: a transformers
    config dict (``model_type`` one of ``FAMILIES``), random weights; ``tokenizer``: ``tiny`` (Sparrow's
    built-in, with the family's special tokens added), a folder, or None (the checkpoint's own)."""

    path: str | None = None
    config: dict[str, Any] | None = None
    tokenizer: str | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    max_length: int = 4096
    dtype: str = "float32"
    attn_implementation: str = "sdpa"

    @property
    def model_type(self) -> str:
        if self.config is not None:
            return str(self.config.get("model_type", ""))
        cfg_file = Path(self.path or "") / "config.json"
        try:
            return str(json.loads(cfg_file.read_text(encoding="utf-8")).get("model_type", ""))
        except (OSError, ValueError) as e:
            raise AdapterError(f"cannot read {str(cfg_file)!r}: {e}") from None

    @property
    def family(self) -> str:
        mt = self.model_type
        if mt not in FAMILIES:
            raise AdapterError(f"model_type {mt!r} has no Sparrow adapter; supported: {sorted(FAMILIES)}")
        return FAMILIES[mt]

    def validate(self) -> None:
        if (self.path is None) == (self.config is None):
            raise AdapterError("an HF model needs exactly one of 'hf' (a checkpoint folder) or 'hf_config'")
        if self.path is not None and not Path(self.path).is_dir():
            raise AdapterError(f"model folder {self.path!r} does not exist")
        if self.config is not None and self.tokenizer is None:
            raise AdapterError("a model built from hf_config needs 'tokenizer' (tiny or a folder)")
        self.family  # noqa: B018 - raises for an unsupported model_type

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sampling"] = asdict(self.sampling)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], base_dir: str | Path | None = None) -> HFModelSpec:
        """A recipe's ``model:`` mapping (``hf`` / ``hf_config`` spelling) or ``to_dict``'s output;
        relative paths resolve against ``base_dir``."""
        d = copy.deepcopy(dict(d))
        component = d.pop("_component_", None)
        family = d.pop("family", None)
        if "hf" in d:
            d["path"] = d.pop("hf")
        if "hf_config" in d:
            d["config"] = d.pop("hf_config")
        if isinstance(d.get("config"), dict) and family is None and component:
            family = str(component).rsplit(".", 1)[-1]
        if family is not None and isinstance(d.get("config"), dict):
            d["config"].setdefault("model_type", family)
        unknown, known = unknown_keys(d, cls)
        if unknown:
            raise AdapterError(f"unknown HF model key(s) {unknown}; known: hf, hf_config, family, {known}")
        sampling = d.pop("sampling", None) or {}
        if isinstance(sampling, dict):
            bad, names = unknown_keys(sampling, SamplingConfig)
            if bad:
                raise AdapterError(f"unknown sampling key(s) {bad}; known: {names}")
            sampling = SamplingConfig(**sampling)
        spec = cls(sampling=sampling, **d)
        if spec.path:
            spec.path = str(resolve_path(spec.path, base_dir))
        if spec.tokenizer not in (None, "tiny"):
            spec.tokenizer = str(resolve_path(spec.tokenizer, base_dir))
        spec.validate()
        return spec


def is_hf_model_mapping(d: Any) -> bool:
    """Whether a recipe's ``model:`` value names an HF-native model (rather than a ``VideoLLMConfig``)."""
    return isinstance(d, dict) and bool({"hf", "hf_config"} & set(d) or "_component_" in d)


def is_hf_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` holds an HF-native checkpoint an adapter serves (Sparrow-saved or not)."""
    p = Path(path)
    if (p / ADAPTER_FILE).is_file():
        return True
    try:
        meta = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "sparrow_format" not in meta and meta.get("model_type") in FAMILIES
