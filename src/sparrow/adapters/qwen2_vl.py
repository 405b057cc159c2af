"""Qwen2-VL and Qwen2.5-VL: frames as one video per media item (``pixel_values_videos`` patches and
``video_grid_thw``), an even frame count (the last frame repeated, as the video processor pads).

Prompt per item: ``<|vision_start|>`` + ``<|video_pad|>`` x (t * h * w / merge^2) + ``<|vision_end|>``,
after Sparrow's ``The video lasts MM:SS.`` line when ``sampling.header`` is on (Qwen's own prompt has
no text; time reaches the model through the temporal positions). An image is a one-frame video (its frame repeated over the
temporal patch: exactly the image processor's patches). Layout row per item (``group_sizes``):
``[t, h, w, milliseconds per temporal patch]``; the last is Qwen2.5-VL's ``second_per_grid_ts``.
Positions are the model's own 3-D M-RoPE (``get_rope_index``), left padding included; a cached
continuation adds the prompt's rope delta. Parts: ``visual`` without ``merger`` / ``merger`` / LM.
"""

from __future__ import annotations

from typing import Any

import torch

from sparrow.adapters.model import HFVideoLM
from sparrow.adapters.pixels import even_frames, normalise, qwen_patches
from sparrow.adapters.processor import HFProcessor, Piece
from sparrow.adapters.spec import AdapterError
from sparrow.model.config import SamplingConfig
from sparrow.model.media import VisualBlock

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_SIDE = 336  # 12 x 12 merged tokens per temporal patch


class Qwen2VLProcessor(HFProcessor):
    family = "qwen2_vl"
    DEFAULT_MEAN, DEFAULT_STD = OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        v = self.hf_config.vision_config
        self.patch, self.merge, self.temporal = (
            int(v.patch_size),
            int(v.spatial_merge_size),
            int(v.temporal_patch_size),
        )
        self.start, self.end, self.video_pad = self.token_ids(
            "<|vision_start|>", "<|vision_end|>", "<|video_pad|>"
        )

    def frame_size(self, s: SamplingConfig) -> int:
        side = s.image_size or DEFAULT_SIDE
        factor = self.patch * self.merge
        if side % factor:
            raise AdapterError(f"sampling.image_size {side} must be a multiple of {factor} for {self.family}")
        return side

    def visual(self, block: VisualBlock, image: bool) -> tuple[list[Piece], torch.Tensor, list[int]]:
        frames = even_frames(block.frames, self.temporal)
        pix, (t, h, w) = qwen_patches(
            normalise(frames, self.mean, self.std), self.patch, self.merge, self.temporal
        )
        ts = block.timestamps
        step = (ts[1] - ts[0]) if ts and len(ts) > 1 else 1.0
        ms_per_grid = int(round(1000 * step * self.temporal))
        pieces: list[Piece] = []
        if block.header:
            pieces.append(("text", block.header + "\n", False))
        n = t * h * w // (self.merge * self.merge)
        pieces.append(("ids", [self.start] + [self.video_pad] * n + [self.end], False))
        return pieces, pix, [t, h, w, ms_per_grid]

    def _frames_in(self, layout: list[int]) -> int:
        rows = [layout[i : i + 4] for i in range(0, len(layout), 4)]
        return int(sum(r[0] * self.temporal for r in rows))


class Qwen2VLModel(HFVideoLM):
    family = "qwen2_vl"
    PART_MEMBERS = {
        "vision": ["model.visual.patch_embed", "model.visual.rotary_pos_emb", "model.visual.blocks"],
        "connector": ["model.visual.merger"],
        "lm": ["model.language_model", "lm_head"],
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._rope_delta: torch.Tensor | None = None
        self._is_2_5 = self.hf.config.model_type == "qwen2_5_vl"

    def placeholder_id(self) -> int:
        return int(self.hf.config.video_token_id)

    def visual_embeds(self, pixel_values: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        grid = layout.view(-1, 4)[:, :3].to(pixel_values.device)
        out = self.hf.model.get_video_features(pixel_values_videos=pixel_values, video_grid_thw=grid)
        return torch.cat(list(out.pooler_output))

    def blank_visual(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.hf.config.vision_config
        side = int(v.spatial_merge_size)
        dim = 3 * int(v.temporal_patch_size) * int(v.patch_size) ** 2
        return torch.zeros(side * side, dim, device=device), torch.tensor([1, side, side, 1000])

    def positions(
        self, input_ids: torch.Tensor, mask: torch.Tensor | None, position_ids: Any, layout: Any, cache: Any
    ) -> torch.Tensor:
        b, length = input_ids.shape
        if cache is not None and cache.get_seq_length() > 0:
            # A continuation: text positions after the prompt's, shifted by its rope delta.
            if mask is not None:
                pos = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:]
            else:
                past = cache.get_seq_length()
                pos = torch.arange(past, past + length, device=input_ids.device).expand(b, -1)
            delta = self._rope_delta if self._rope_delta is not None else torch.zeros(1, 1, dtype=torch.long)
            delta = delta.to(pos.device).repeat_interleave(b // delta.shape[0], dim=0)
            return (pos + delta)[None].expand(3, -1, -1)
        types = (input_ids == self.placeholder_id()).int() * 2  # video tokens; text is 0
        rows = layout.view(-1, 4) if layout is not None and layout.numel() else None
        kwargs: dict[str, Any] = {}
        if self._is_2_5 and rows is not None:
            kwargs["second_per_grid_ts"] = (rows[:, 3].float() / 1000.0).tolist()
        pos, delta = self.hf.model.get_rope_index(
            input_ids,
            mm_token_type_ids=types,
            video_grid_thw=rows[:, :3] if rows is not None else None,
            attention_mask=mask if mask is not None and mask.dim() == 2 else None,
            **kwargs,
        )
        self._rope_delta = delta.detach()
        return pos
