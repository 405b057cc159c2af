"""The video-LLM: vision encoder(s) -> connector -> causal LM.

Visual embeddings replace the LM's input embeddings at the placeholder token positions (the
processor put ``tokens_per_group`` placeholders per frame or clip), in order. The forward pass
returns the LM output (``.logits``); the loss lives in the trainer, which shifts the labels.
Checkpoints: ``save_pretrained`` / ``load_pretrained`` (the format is ``sparrow.model.checkpoint``).
Two hooks: ``adapters`` (the parts carrying LoRA adapters, ``sparrow.model.lora``) and
``feature_cache`` (a ``FeatureCache`` consulted for a frozen vision tower's output).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sparrow.hf_logging import quiet_hf
from sparrow.model.checkpoint import load_adapters, load_connector, read_checkpoint_config, save_checkpoint
from sparrow.model.config import VideoLLMConfig
from sparrow.model.connector import build_connector
from sparrow.model.feature_cache import FeatureCache
from sparrow.model.geometry import frame_size, hf_config
from sparrow.model.lora import AdapterConfig, merge_adapters
from sparrow.model.packaged import lm_dir
from sparrow.model.processor import Processor
from sparrow.model.tokenizer import tokenizer_for
from sparrow.model.vision import VisionEncoder, _enable_hf_checkpointing, _torch_dtype


class VideoLLM(nn.Module):
    """``VideoLLM(cfg)`` builds (or loads from local paths) the three parts; ``tokenizer`` may be
    passed to avoid loading it twice (it is only needed for the placeholder id and vocabulary size)."""

    def __init__(self, cfg: VideoLLMConfig, tokenizer: Any = None):
        super().__init__()
        from transformers import AutoModelForCausalLM

        cfg.validate()
        self.cfg = cfg
        dtype = _torch_dtype(cfg.dtype) or torch.float32
        self.vision = VisionEncoder(cfg.vision, cfg.vision2, cfg.dtype)
        lm_conf = hf_config(cfg.lm)
        lm_conf._attn_implementation = cfg.lm.attn_implementation
        lm_path = lm_dir(cfg.lm)  # a packaged LM's prepared folder (hf_config above prepared it)
        if lm_path:
            with quiet_hf():
                self.lm = AutoModelForCausalLM.from_pretrained(
                    lm_path, config=lm_conf, local_files_only=True, use_safetensors=True, dtype=dtype
                )
        else:
            self.lm = AutoModelForCausalLM.from_config(lm_conf, dtype=dtype)
        hidden = int(self.lm.config.hidden_size)
        grid = self.vision.tower.grid_for(frame_size(cfg))
        self.connector = build_connector(cfg.connector, self.vision.out_dim, hidden, grid).to(dtype)

        tok = tokenizer if tokenizer is not None else tokenizer_for(cfg)
        self.visual_token_id = int(tok.convert_tokens_to_ids(cfg.visual_token))
        if len(tok) > self.lm.get_input_embeddings().num_embeddings:
            # A real checkpoint whose tokenizer just gained the visual placeholder.
            self.lm.resize_token_embeddings(len(tok), mean_resizing=False)
        self.eos_token_ids = sorted(
            {
                i
                for i in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>"))
                if isinstance(i, int) and i >= 0
            }
        )
        self.pad_token_id = int(tok.pad_token_id)
        # transformers 5.24 renamed the LM's ``past_key_values`` argument to ``cache`` (the old name
        # warns, and goes in 5.40); older versions only know the old name.
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(self.lm.forward).parameters else "past_key_values"
        )
        self.adapters: dict[str, AdapterConfig] = {}  # part -> LoRA settings (sparrow.model.lora)
        # Consulted only while the vision encoder is frozen (see FeatureCache); None: always recompute.
        self.feature_cache: FeatureCache | None = None
        # How a packed batch's LM pass runs: "mask" (its block-diagonal 4-D mask), "per_sample" (each
        # sample in a row of its own, padded: the same result without attention over other samples'
        # positions) or "auto" (per_sample on a CPU, where the masked attention over whole packed rows
        # is the slow path, mask elsewhere).
        self.packed_attention = "auto"

    # ------------------------------------------------------------------------------- structure

    def parts(self) -> dict[str, nn.Module]:
        """The three trainable parts, for freezing and per-part learning rates."""
        return {"vision": self.vision, "connector": self.connector, "lm": self.lm}

    def enable_gradient_checkpointing(self) -> None:
        self.vision.enable_gradient_checkpointing()
        self.connector.gradient_checkpointing = True
        _enable_hf_checkpointing(self.lm)
        self.lm.config.use_cache = False

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    # --------------------------------------------------------------------------------- forward

    def encode_visual(
        self, pixel_values: torch.Tensor, group_sizes: torch.Tensor | list[int]
    ) -> torch.Tensor:
        """Frames ``(F, 3, S, S)`` in groups of ``group_sizes`` frames -> ``(G, n_tokens, D)``."""
        pixel_values = pixel_values.to(self.connector_dtype)
        if self.feature_cache is not None:
            feats = self.feature_cache.features(self.vision, pixel_values, self.cfg)  # (F, g, g, C)
        else:
            feats = self.vision(pixel_values)
        sizes = group_sizes.tolist() if isinstance(group_sizes, torch.Tensor) else list(group_sizes)
        if sum(sizes) != feats.shape[0]:
            raise ValueError(f"group_sizes add up to {sum(sizes)} frames, pixel_values has {feats.shape[0]}")
        return self.connector(list(torch.split(feats, sizes)))

    @property
    def connector_dtype(self) -> torch.dtype:
        return next(self.connector.parameters()).dtype

    def embed(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        group_sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """LM input embeddings with the visual tokens in place of the placeholders."""
        embeds = self.lm.get_input_embeddings()(input_ids)
        slots = input_ids == self.visual_token_id
        if pixel_values is not None and pixel_values.numel():
            if group_sizes is None:
                group_sizes = torch.ones(pixel_values.shape[0], dtype=torch.long)
            vis = self.encode_visual(pixel_values, group_sizes)
            vis = vis.reshape(-1, vis.shape[-1]).to(embeds.dtype)
            n_slots = int(slots.sum())
            if n_slots != vis.shape[0]:
                raise ValueError(
                    f"{n_slots} visual placeholders in input_ids but {vis.shape[0]} visual tokens"
                )
            # Row-major fill: groups are ordered by row, then by position, exactly as collate made them.
            embeds = embeds.masked_scatter(slots.unsqueeze(-1), vis)
        else:
            if bool(slots.any()):
                raise ValueError("input_ids hold visual placeholders but no pixel_values were given")
            if torch.is_grad_enabled():
                # Text-only batch: run the vision path on one blank frame, weighted zero, so every
                # parameter gets a (zero) gradient and DDP / FSDP ranks stay in step.
                size = frame_size(self.cfg)
                blank = torch.zeros(1, 3, size, size, device=embeds.device, dtype=self.connector_dtype)
                dummy = self.encode_visual(blank, [1])
                embeds = embeds + 0.0 * dummy.sum().to(embeds.dtype)
        return embeds

    def _lm_attention_mask(
        self, attention_mask: torch.Tensor | None, dtype: torch.dtype
    ) -> torch.Tensor | None:
        if attention_mask is None or attention_mask.dim() != 4:
            return attention_mask
        # A packed batch carries a boolean (B, 1, L, L) block-diagonal causal mask; transformers
        # passes 4D masks to the attention function untouched, so give each kernel its format.
        impl = self.lm.config._attn_implementation or "sdpa"
        if impl.startswith("flash"):
            return None  # flash-attention finds the sequence boundaries from the restarting position_ids
        if impl == "eager":
            mask = attention_mask.to(torch.bool)
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
                ~mask, torch.finfo(dtype).min
            )
        return attention_mask.to(torch.bool)

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
        """Returns the LM output (``.logits`` (B, L, V); with ``use_cache`` its KV cache, read it with
        ``output_cache``). ``cache``: the KV cache of the tokens before ``input_ids``. ``seq_index`` (a
        packed batch's sample of each token) lets a packed batch run per sample. No loss is computed:
        pass a collated batch without its targets (``sparrow.model.collate.model_inputs``).

        ``logits_at`` (bool (B, L)): compute logits only at those positions; ``.logits`` is then
        ``(N, V)`` in row-major order of the True entries. The LM head (the largest matrix multiply of
        a small LM, and a (B, L, V) activation) then runs only where a loss or a score needs it."""
        embeds = self.embed(input_ids, pixel_values, group_sizes)
        if self._per_sample(embeds, attention_mask, seq_index, position_ids, cache, use_cache):
            hidden = self._per_sample_hidden(embeds, seq_index, position_ids)
            head = self.lm.get_output_embeddings()
            if logits_at is not None:
                hidden = hidden[logits_at.to(hidden.device)]
            elif logits_to_keep:
                hidden = hidden[:, -logits_to_keep:]
            from transformers.modeling_outputs import CausalLMOutputWithPast

            return CausalLMOutputWithPast(logits=head(hidden))
        kwargs = {self._cache_arg: cache} if cache is not None else {}
        args = {
            "inputs_embeds": embeds,
            "attention_mask": self._lm_attention_mask(attention_mask, embeds.dtype),
            "position_ids": position_ids,
            "use_cache": use_cache,
            **kwargs,
        }
        if logits_at is None:
            return self.lm(logits_to_keep=logits_to_keep, **args)
        if not self._head_is_plain():
            out = self.lm(**args)
            out["logits"] = out.logits[logits_at.to(out.logits.device)]
            return out
        from transformers.modeling_outputs import CausalLMOutputWithPast

        hidden = self.lm.get_decoder()(**args)
        at = logits_at.to(hidden.last_hidden_state.device)
        out = CausalLMOutputWithPast(logits=self.lm.get_output_embeddings()(hidden.last_hidden_state[at]))
        if use_cache:
            out[self._cache_arg] = output_cache(hidden)
        return out

    def _per_sample(
        self,
        embeds: torch.Tensor,
        attention_mask: torch.Tensor | None,
        seq_index: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        cache: Any,
        use_cache: bool,
    ) -> bool:
        """Whether a packed batch's LM pass runs per sample (see ``packed_attention``)."""
        mode = self.packed_attention
        if mode not in ("auto", "mask", "per_sample"):
            raise ValueError(f"packed_attention must be auto, mask or per_sample, got {mode!r}")
        packed = attention_mask is not None and attention_mask.dim() == 4
        if not packed or seq_index is None or position_ids is None or cache is not None or use_cache:
            return False
        if mode == "mask" or not self._head_is_plain():
            return False
        return mode == "per_sample" or embeds.device.type == "cpu"

    def _per_sample_hidden(
        self, embeds: torch.Tensor, seq_index: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        """The LM's last hidden states of a packed batch, computed with each sample in a right-padded row
        of its own (positions 0..n-1, as packing gives them); (B, L, D), zeros on padding."""
        seq_index, position_ids = seq_index.to(embeds.device), position_ids.to(embeds.device)
        valid = seq_index >= 0
        sample, pos = seq_index[valid], position_ids[valid]
        lengths = torch.bincount(sample)
        n, width, dim = lengths.numel(), int(lengths.max()), embeds.shape[-1]
        slot = sample * width + pos
        rows = embeds.new_zeros(n * width, dim).index_copy(0, slot, embeds[valid]).view(n, width, dim)
        mask = (torch.arange(width, device=embeds.device)[None] < lengths[:, None]).long()
        hidden = self.lm.get_decoder()(inputs_embeds=rows, attention_mask=mask).last_hidden_state
        out = hidden.new_zeros(*embeds.shape[:2], hidden.shape[-1])
        out[valid] = hidden.reshape(-1, hidden.shape[-1])[slot]
        return out

    def _head_is_plain(self) -> bool:
        """Whether the LM's logits are exactly ``lm_head(decoder(x))`` (no soft-capping or scaling)."""
        c = self.lm.config
        extra = (getattr(c, "final_logit_softcapping", None), getattr(c, "logit_scale", None))
        return all(v in (None, 1.0) for v in extra) and self.lm.get_output_embeddings() is not None

    # ----------------------------------------------------------------------------- persistence

    def save_pretrained(self, out_dir: str | os.PathLike, processor: Any = None) -> Path:
        """Write the checkpoint (``sparrow.model.checkpoint``); ``processor`` supplies the tokenizer
        and sampling settings."""
        return save_checkpoint(self, out_dir, processor)


def load_pretrained(
    ckpt_dir: str | os.PathLike, device: str | torch.device | None = None, dtype: str | None = None
) -> tuple[VideoLLM, Processor]:
    """Load ``(model, processor)`` from a directory written by ``save_pretrained`` (safetensors only)."""
    cfg = read_checkpoint_config(ckpt_dir)
    if dtype is not None:
        cfg.dtype = dtype
    processor = Processor(cfg)
    model = VideoLLM(cfg, tokenizer=processor.tokenizer)
    load_connector(model, ckpt_dir)
    load_adapters(model, ckpt_dir)
    if device is not None:
        model.to(device)
    model.eval()
    return model, processor


def merge_checkpoint(ckpt_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Export: load ``ckpt_dir``, merge its LoRA adapters into the base weights and save a plain checkpoint
    (no ``adapters.safetensors``) to ``out_dir``. Returns ``out_dir``."""
    model, processor = load_pretrained(ckpt_dir)
    merge_adapters(model)
    return model.save_pretrained(out_dir, processor=processor)


def output_cache(out: Any) -> Any:
    """The KV cache of an LM output: ``cache`` from transformers 5.24 on, ``past_key_values`` before
    (reading the old name from a new output warns)."""
    return out["cache"] if "cache" in out else out.get("past_key_values")
