"""LLaVA-OneVision: frames as ``pixel_values_videos`` at the tower's own size; the model's video path
(tower, ``vision_feature_layer``, projector, 2 x 2 bilinear pooling, one ``image_newline`` after the
frames) makes ``frames * ceil(g / 2)^2 + 1`` tokens per item (g = image_size / patch_size), as its
processor counts ``<video>`` tokens. An image is a one-frame video (not the anyres tiling of the image
path). Layout row per item (``group_sizes``): its frame count. Optional Sparrow text per frame
(``sampling.timestamps``) goes before the item's tokens as one line. Parts: ``vision_tower`` /
``multi_modal_projector`` + ``image_newline`` / LM.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sparrow.adapters.model import HFVideoLM
from sparrow.adapters.pixels import normalise
from sparrow.adapters.processor import HFProcessor, Piece
from sparrow.adapters.spec import AdapterError
from sparrow.model.config import SamplingConfig
from sparrow.model.media import VisualBlock

# The processor class defaults (real checkpoints ship their own: 0.5 for the SigLIP towers).
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _intro(block: VisualBlock) -> str:
    """Sparrow's optional text before the frames: the video length and the per-frame times."""
    words = [block.header] if block.header else []
    stamps = [p for p in block.prefixes if p]
    if stamps:
        words.append(" ".join(stamps))
    return "\n".join(words)


class LlavaOnevisionProcessor(HFProcessor):
    family = "llava_onevision"
    DEFAULT_MEAN, DEFAULT_STD = OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        v = self.hf_config.vision_config
        self.side = int(v.image_size)
        g = self.side // int(v.patch_size)
        self.per_frame = math.ceil(g / 2) ** 2
        (self.video,) = self.token_ids("<video>")

    def frame_size(self, s: SamplingConfig) -> int:
        if s.image_size not in (None, self.side):
            raise AdapterError(
                f"llava_onevision frames are {self.side} px (its tower's size); drop sampling.image_size"
            )
        return self.side

    def visual(self, block: VisualBlock, image: bool) -> tuple[list[Piece], torch.Tensor, list[int]]:
        pieces: list[Piece] = []
        intro = _intro(block)
        if intro:
            pieces.append(("text", intro + "\n", False))
        n = len(block.frames)
        pieces.append(("ids", [self.video] * (n * self.per_frame + 1), False))
        return pieces, normalise(block.frames, self.mean, self.std), [n]


class LlavaOnevisionModel(HFVideoLM):
    family = "llava_onevision"
    PART_MEMBERS = {
        "vision": ["model.vision_tower"],
        "connector": ["model.multi_modal_projector", "model.image_newline"],
        "lm": ["model.language_model", "lm_head"],
    }

    def placeholder_id(self) -> int:
        return int(self.hf.config.video_token_id)

    def visual_embeds(self, pixel_values: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        sizes = layout.tolist()
        chunks = torch.split(pixel_values, sizes)
        if len(set(sizes)) == 1:  # equal frame counts: one pass over all items
            out = self.hf.model.get_video_features(pixel_values_videos=torch.stack(chunks)).pooler_output
            return out.reshape(-1, out.shape[-1])
        feats = [
            self.hf.model.get_video_features(pixel_values_videos=c[None]).pooler_output[0] for c in chunks
        ]
        return torch.cat(feats)

    def blank_visual(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        side = int(self.hf.config.vision_config.image_size)
        return torch.zeros(1, 3, side, side, device=device), torch.tensor([1])
