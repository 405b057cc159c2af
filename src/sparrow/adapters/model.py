"""The model side of an HF-native family: a transformers ``*ForConditionalGeneration`` behind the
interface Sparrow's trainer, eval and serve use (the one ``VideoLLM`` has).

``forward`` takes a collated batch (``input_ids``, ``attention_mask``, ``pixel_values``, ``group_sizes``
and the rest ``sparrow.model.collate`` makes) and returns ``.logits``, computed only at ``logits_at`` (bool
(B, L)) or the last ``logits_to_keep`` positions, and with ``use_cache`` the KV cache (``cache=`` continues
it). Visual features replace the family's placeholder tokens in the input embeddings (the family's
``visual_embeds``); the decoder and LM head are the checkpoint's own, so the logits are those of the
transformers model on the same inputs. Parts: ``vision`` (tower), ``connector`` (the projector: Qwen2-VL's
merger, LLaVA-OneVision's projector and ``image_newline``, Idefics3's connector) and ``lm``; disjoint.
Packed batches (4-D masks) are refused: the families' position ids (Qwen2-VL's 3-D M-RoPE) are worked
out per row, not per packed sequence.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sparrow.adapters.parts import PartView, check_disjoint
from sparrow.adapters.spec import AdapterError, HFModelSpec
from sparrow.adapters.tokens import end_of_turn_ids
from sparrow.model.lora import AdapterConfig


class PackingError(AdapterError):
    """Packing asked of a model whose adapter does not pack."""


class HFVideoLM(nn.Module):
    family = ""
    supports_packing = False
    # attribute paths (from the transformers model) of each part
    PART_MEMBERS: dict[str, list[str]] = {}

    def __init__(self, hf: nn.Module, tokenizer: Any, spec: HFModelSpec):
        super().__init__()
        self.hf = hf
        self.spec = spec
        self.cfg = spec
        self.adapters: dict[str, AdapterConfig] = {}
        self.feature_cache = None  # the trainer sets it for frozen towers; HF adapters do not use it
        self.eos_token_ids = end_of_turn_ids(tokenizer)
        self.pad_token_id = int(tokenizer.pad_token_id)
        # A plain dict: the views are not registered as children (state dict keeps transformers' names).
        self._parts = {name: PartView(hf, members) for name, members in self.PART_MEMBERS.items()}
        check_disjoint(hf, self._parts)
        self._idle = self._find_idle_visual_parameters()

    def _find_idle_visual_parameters(self) -> list[str]:
        """Vision / projector parameters the visual features do not depend on (a tower's final norm or
        pooling head, layers after the feature layer). They are tied into the graph with weight zero in
        training, so DDP never waits for their gradients and every part reports a gradient."""
        names = {id(p): n for n, p in self.hf.named_parameters()}
        visual = [p for part in ("vision", "connector") for p in self._parts[part].parameters()]
        flags = [p.requires_grad for p in visual]
        for p in visual:
            p.requires_grad_(True)
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            pix, lay = self.blank_visual(self.device)
            out = self.visual_embeds(pix.to(next(self.hf.parameters()).dtype), lay)
            used = torch.autograd.grad(out.float().sum(), visual, allow_unused=True)
        for p, flag in zip(visual, flags, strict=True):
            p.requires_grad_(flag)
        return [names[id(p)] for p, g in zip(visual, used, strict=True) if g is None]

    # ---------------------------------------------------------------------------- structure

    def parts(self) -> dict[str, nn.Module]:
        return dict(self._parts)

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def hidden_size(self) -> int:
        return int(self.hf.config.get_text_config().hidden_size)

    def enable_gradient_checkpointing(self) -> None:
        self.hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.hf.config.use_cache = False

    def decoder(self) -> nn.Module:
        return self.hf.get_decoder()

    # --------------------------------------------------------------------------- what families define

    def visual_embeds(self, pixel_values: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        """``(visual tokens, hidden)`` for the batch's media, in placeholder order."""
        raise NotImplementedError

    def blank_visual(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """A one-item blank input (pixels, layout) for the zero-weight pass of a text-only batch."""
        raise NotImplementedError

    def placeholder_id(self) -> int:
        raise NotImplementedError

    def positions(
        self, input_ids: torch.Tensor, mask: torch.Tensor | None, position_ids: Any, layout: Any, cache: Any
    ) -> torch.Tensor | None:
        """Position ids of the LM: by default the given ones, else counted over the attention mask."""
        if position_ids is not None or mask is None:
            return position_ids
        return (mask.long().cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]

    # ------------------------------------------------------------------------------ forward

    def embed(self, input_ids: torch.Tensor, pixel_values: Any, layout: Any) -> torch.Tensor:
        embeds = self.hf.get_input_embeddings()(input_ids)
        slots = input_ids == self.placeholder_id()
        if pixel_values is not None and pixel_values.numel():
            vis = self._with_idle(self.visual_embeds(pixel_values, layout)).to(embeds.dtype)
            if int(slots.sum()) != vis.shape[0]:
                raise ValueError(
                    f"{int(slots.sum())} visual placeholders in input_ids but {vis.shape[0]} visual tokens"
                )
            return embeds.masked_scatter(slots.unsqueeze(-1), vis)
        if bool(slots.any()):
            raise ValueError("input_ids hold visual placeholders but no pixel_values were given")
        if torch.is_grad_enabled() and self.training:
            # Text-only batch: the vision path runs on a blank input weighted zero, so every parameter
            # gets a (zero) gradient and DDP ranks with mixed batches stay in step.
            pix, lay = self.blank_visual(embeds.device)
            embeds = embeds + 0.0 * self._with_idle(self.visual_embeds(pix, lay)).sum().to(embeds.dtype)
        return embeds

    def _with_idle(self, vis: torch.Tensor) -> torch.Tensor:
        if not (self._idle and self.training and torch.is_grad_enabled()):
            return vis
        params = dict(self.hf.named_parameters())
        return vis + 0.0 * sum(params[n].sum() for n in self._idle if n in params).to(vis.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        group_sizes: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        seq_index: torch.Tensor | None = None,
        cache: Any = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        logits_at: torch.Tensor | None = None,
    ) -> Any:
        from transformers.modeling_outputs import CausalLMOutputWithPast

        del seq_index  # used by packed batches only, which these models refuse below
        if attention_mask is not None and attention_mask.dim() == 4:
            raise PackingError(f"{self.family} models do not take packed batches: set packing: false")
        embeds = self.embed(input_ids, pixel_values, group_sizes)
        pos = self.positions(input_ids, attention_mask, position_ids, group_sizes, cache)
        out = self.decoder()(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=pos,
            cache=cache,
            use_cache=use_cache,
        )
        hidden = out.last_hidden_state
        if logits_at is not None:
            hidden = hidden[logits_at.to(hidden.device)]
        elif logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        result = CausalLMOutputWithPast(logits=self.hf.get_output_embeddings()(hidden))
        if use_cache:
            result["cache"] = out["cache"] if "cache" in out else out.get("past_key_values")
        return result

    # ---------------------------------------------------------------------------- persistence

    def save_pretrained(
        self, out_dir: str | os.PathLike, processor: Any = None, merge_lora: bool = False
    ) -> Path:
        """A checkpoint transformers' ``from_pretrained`` loads (``sparrow.adapters.checkpoint``)."""
        from sparrow.adapters.checkpoint import save_checkpoint

        return save_checkpoint(self, out_dir, processor, merge_lora=merge_lora)
