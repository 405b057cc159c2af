"""LoRA adapters per model part (with ``peft``): add, continue, merge, and the weights they save.

A stage that trains a part with ``lora`` injects LoRA layers into that part in place
(``peft.inject_adapter_in_model``): the part keeps its class and methods, its base weights freeze, and
only the adapter matrices train. ``VideoLLM.adapters`` records which parts carry adapters and with
which settings; the checkpoint stores the base weights under their usual names plus the adapters in
``adapters.safetensors`` (``sparrow.model.checkpoint``). ``merge_adapters`` folds them into the base
weights (export: ``sparrow.model.videollm.merge_checkpoint``), after which the model is a plain one again.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from sparrow.model.config import ConfigError
from sparrow.yamlio import check_mapping

ADAPTER_NAME = "default"  # peft's default name: the saved keys are those PeftModel uses too


class LoraError(ConfigError):
    """LoRA settings that cannot apply (bad values, no matching module, a sharded model)."""


@dataclass
class AdapterConfig:
    """LoRA settings of one part: rank ``r``, scale ``alpha`` (the update is ``alpha / r * B A``),
    ``dropout`` on the adapter input, and ``targets``: module names to adapt (``q_proj``, ...) or
    ``all-linear``."""

    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: list[str] | str = field(default_factory=lambda: ["q_proj", "v_proj"])

    def validate(self, where: str = "lora") -> None:
        if not isinstance(self.r, int) or self.r < 1:
            raise LoraError(f"{where}: r must be an integer >= 1, got {self.r!r}")
        if not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise LoraError(f"{where}: alpha must be > 0, got {self.alpha!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise LoraError(f"{where}: dropout must be in [0, 1), got {self.dropout!r}")
        t = self.targets
        if not (t == "all-linear" or (isinstance(t, list) and t and all(isinstance(x, str) for x in t))):
            raise LoraError(f"{where}: targets must be a non-empty list of module names or 'all-linear'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "lora") -> AdapterConfig:
        if isinstance(d, AdapterConfig):
            return d
        d = check_mapping(d, cls, LoraError, where)
        if isinstance(d.get("targets"), tuple):
            d["targets"] = list(d["targets"])
        if isinstance(d.get("alpha"), int):
            d["alpha"] = float(d["alpha"])
        cfg = cls(**d)
        cfg.validate(where)
        return cfg

    def peft_config(self) -> Any:
        from peft import LoraConfig

        targets = self.targets if isinstance(self.targets, str) else list(self.targets)
        return LoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=float(self.dropout), target_modules=targets
        )


def _part(model: Any, part: str) -> nn.Module:
    parts = model.parts()
    if part not in parts:
        raise LoraError(f"lora: unknown part {part!r}; parts: {sorted(parts)}")
    return parts[part]


def tuner_layers(module: nn.Module) -> dict[str, nn.Module]:
    """The LoRA-wrapped layers inside ``module``, by name (outermost only)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    found: dict[str, nn.Module] = {}
    for name, m in module.named_modules():
        if isinstance(m, BaseTunerLayer) and not any(name.startswith(p + ".") for p in found):
            found[name] = m
    return found


def add_adapters(model: Any, part: str, cfg: AdapterConfig, seed: int | None = None) -> bool:
    """Give ``part`` LoRA adapters with ``cfg``; returns False when it already has these very adapters
    (a later stage continues them). Adapters with other settings are merged into the base weights
    first. ``seed`` makes the initial adapter weights independent of the training RNG stream (and
    equal on every rank)."""
    from peft import inject_adapter_in_model

    cfg.validate(f"lora of {part}")
    current = model.adapters.get(part)
    if current == cfg:
        return False
    if current is not None:
        merge_adapters(model, [part])
    module = _part(model, part)
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        try:
            inject_adapter_in_model(cfg.peft_config(), module, adapter_name=ADAPTER_NAME)
        except ValueError as e:
            raise LoraError(f"lora of {part}: {str(e).splitlines()[0]}") from e
    model.adapters[part] = cfg
    return True


def adapter_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The adapter (``lora_*``) parameters of ``module``, by name."""
    return [(n, p) for n, p in module.named_parameters() if ".lora_" in f".{n}"]


def mark_adapters_trainable(module: nn.Module) -> int:
    """Freeze ``module``'s base weights and unfreeze its adapters; returns the adapter parameter count."""
    module.requires_grad_(False)
    n = 0
    for _, p in adapter_parameters(module):
        p.requires_grad_(True)
        n += p.numel()
    return n


def merge_adapters(model: Any, parts: list[str] | None = None) -> list[str]:
    """Fold the adapters of ``parts`` (default: all) into their base weights and remove the LoRA layers;
    returns the parts merged. The merged model computes what the adapted one did (to float rounding)."""
    merged = []
    for part in list(parts if parts is not None else model.adapters):
        if part not in model.adapters:
            continue
        module = _part(model, part)
        for name, layer in tuner_layers(module).items():
            layer.merge(safe_merge=True)
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, layer.get_base_layer())
        if hasattr(module, "peft_config"):
            del module.peft_config
        del model.adapters[part]
        merged.append(part)
    return merged


def base_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict without adapters and with the base weights under their original names
    (``q_proj.base_layer.weight`` -> ``q_proj.weight``): what a plain ``from_pretrained`` loads."""
    wrapped = list(tuner_layers(module))
    out: dict[str, torch.Tensor] = {}
    for key, value in module.state_dict().items():
        owner = next((w for w in wrapped if key.startswith(w + ".")), None)
        if owner is None:
            out[key] = value
            continue
        rest = key[len(owner) + 1 :]
        if rest.startswith("base_layer."):
            out[f"{owner}.{rest[len('base_layer.') :]}"] = value
    return out


def adapter_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Every part's adapter weights, keyed ``{part}.{peft key}`` (peft's keys, adapter name removed)."""
    from peft import get_peft_model_state_dict

    out: dict[str, torch.Tensor] = {}
    for part in model.adapters:
        sd = get_peft_model_state_dict(_part(model, part), adapter_name=ADAPTER_NAME)
        out.update({f"{part}.{k}": v.detach().contiguous().cpu() for k, v in sd.items()})
    return out


def load_adapter_state(
    model: Any, adapters: dict[str, AdapterConfig], state: dict[str, torch.Tensor]
) -> None:
    """Inject ``adapters`` (part -> settings) and load their weights from ``state`` (as
    ``adapter_state_dict`` wrote it); every adapter weight must be present, nothing else may be."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    seen: set[str] = set()
    for part, cfg in adapters.items():
        add_adapters(model, part, cfg, seed=0)
        module = _part(model, part)
        prefix = f"{part}."
        sd = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        expected = set(get_peft_model_state_dict(module, adapter_name=ADAPTER_NAME))
        if set(sd) != expected:
            missing, extra = sorted(expected - set(sd)), sorted(set(sd) - expected)
            raise LoraError(f"adapters of {part}: missing {missing[:3]}, unexpected {extra[:3]}")
        set_peft_model_state_dict(module, sd, adapter_name=ADAPTER_NAME)
        seen.update(prefix + k for k in sd)
    extra = sorted(set(state) - seen)
    if extra:
        raise LoraError(f"adapter weights for parts without adapters: {extra[:3]}")


def copy_adapters(src: Any, dst: Any) -> None:
    """Give ``dst`` the same adapter layers as ``src`` (weights are not copied), so that
    ``dst.load_state_dict(src.state_dict())`` matches key for key."""
    for part, cfg in src.adapters.items():
        add_adapters(dst, part, cfg, seed=0)
