"""Idefics3 (SmolVLM): frames as images at the tower's size, each introduced the way SmolVLM's video
prompt does: ``\\nFrame from MM:SS:`` then ``<fake_token_around_image><global-img>`` + ``<image>`` x
image_seq_len + ``<fake_token_around_image>``; a video opens with SmolVLM's sentence ``You are provided
the following series of N frames from a H:MM:SS [H:MM:SS] video.`` when ``sampling.header`` is on. Frames
are not split into tiles (SmolVLM's video path resizes them whole). Synthetic frames get Sparrow's
``Frame 3:``. Layout row per item: its frame count. Parts: ``vision_model`` / ``connector`` / LM.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from sparrow.adapters.model import HFVideoLM
from sparrow.adapters.pixels import normalise
from sparrow.adapters.processor import HFProcessor, Piece
from sparrow.adapters.spec import AdapterError
from sparrow.model.config import SamplingConfig
from sparrow.model.media import VisualBlock


def _header_seconds(header: str) -> float | None:
    """The duration Sparrow's ``The video lasts MM:SS.`` line states (None without a header)."""
    m = re.search(r"(\d+(?::\d+)+)", header or "")
    if not m:
        return None
    seconds = 0.0
    for part in m.group(1).split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Idefics3Processor(HFProcessor):
    family = "idefics3"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        v = self.hf_config.vision_config
        self.side = int(v.image_size)
        scale = int(self.hf_config.scale_factor)
        self.seq_len = (self.side // int(v.patch_size)) ** 2 // (scale * scale)
        self.fake, self.global_img, self.image = self.token_ids(
            "<fake_token_around_image>", "<global-img>", "<image>"
        )

    def frame_size(self, s: SamplingConfig) -> int:
        if s.image_size not in (None, self.side):
            raise AdapterError(
                f"idefics3 frames are {self.side} px (its tower's size); drop sampling.image_size"
            )
        return self.side

    def visual(self, block: VisualBlock, image: bool) -> tuple[list[Piece], torch.Tensor, list[int]]:
        tokens = [self.fake, self.global_img] + [self.image] * self.seq_len + [self.fake]
        pieces: list[Piece] = []
        n = len(block.frames)
        duration = _header_seconds(block.header)
        if duration is not None:
            intro = f"You are provided the following series of {n} frames from a {_hms(duration)} [H:MM:SS] video.\n"
            pieces.append(("text", intro, False))
        for prefix in block.prefixes:
            if prefix:
                pieces.append(("text", "\n" + prefix, False))
            pieces.append(("ids", tokens, False))
        if not image:
            pieces.append(("text", "\n\n", False))
        return pieces, normalise(block.frames, self.mean, self.std), [n]


class Idefics3Model(HFVideoLM):
    family = "idefics3"
    PART_MEMBERS = {
        "vision": ["model.vision_model"],
        "connector": ["model.connector"],
        "lm": ["model.text_model", "lm_head"],
    }

    def placeholder_id(self) -> int:
        return int(self.hf.config.image_token_id)

    def visual_embeds(self, pixel_values: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        out = self.hf.model.get_image_features(pixel_values=pixel_values[None])
        return torch.cat(list(out.pooler_output))

    def blank_visual(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        side = int(self.hf.config.vision_config.image_size)
        # All-zero images are taken for padding by Idefics3 and dropped: use a constant non-zero frame.
        return torch.full((1, 3, side, side), -1.0, device=device), torch.tensor([1])
