"""Named, disjoint parts of an HF-native model (vision tower, projector, LM) as modules of their own.

A ``PartView`` registers existing submodules (and loose parameters, such as LLaVA-OneVision's
``image_newline``) of the wrapped model under one module, without copying them: freezing a view, giving
it LoRA adapters (``sparrow.model.lora`` injects into the shared submodules) or listing its parameters
acts on the model itself. The view is not a child of the model, so the model's own state dict keeps its
transformers names and a checkpoint loads with plain ``from_pretrained``.
"""

from __future__ import annotations

from torch import nn

from sparrow.adapters.spec import AdapterError


class PartView(nn.Module):
    """The modules and parameters ``members`` names (attribute paths into ``root``), under their last
    name (``model.visual.blocks`` -> ``blocks``)."""

    def __init__(self, root: nn.Module, members: list[str]):
        super().__init__()
        self.members = list(members)
        for path in members:
            owner_path, _, name = path.rpartition(".")
            owner = root.get_submodule(owner_path) if owner_path else root
            value = getattr(owner, name)
            if isinstance(value, nn.Parameter):
                self.register_parameter(name, value)
            elif isinstance(value, nn.Module):
                self.add_module(name, value)
            else:
                raise AdapterError(f"{path} is neither a module nor a parameter")


def check_disjoint(root: nn.Module, parts: dict[str, nn.Module]) -> None:
    """Every parameter of ``root`` belongs to exactly one part (a tied weight counts once)."""
    owner: dict[int, str] = {}
    for name, part in parts.items():
        for p in part.parameters():
            if id(p) in owner and owner[id(p)] != name:
                raise AdapterError(f"a parameter is in both parts {owner[id(p)]} and {name}")
            owner[id(p)] = name
    loose = [n for n, p in root.named_parameters() if id(p) not in owner]
    if loose:
        raise AdapterError(f"parameters in no part: {loose[:3]}")
