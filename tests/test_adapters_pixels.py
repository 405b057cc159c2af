"""Sparrow's pixels for HF-native families equal what the families' own (PIL) image processors make
from the same decoded frames: normalisation, and Qwen2-VL's patch layout for images and videos."""

from __future__ import annotations

import numpy as np
import torch

from sparrow.adapters.pixels import even_frames, normalise, qwen_patches
from sparrow.adapters.qwen2_vl import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD


def frames(n: int, side: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


def test_qwen2_vl_image_patches_equal_the_image_processor() -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    side = 56
    frame = frames(1, side)
    ip = Qwen2VLImageProcessorPil(size={"shortest_edge": side * side, "longest_edge": side * side})
    ref = ip(images=[frame[0]], return_tensors="pt")
    ours, grid = qwen_patches(normalise(even_frames(frame, 2), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD), 14, 2, 2)
    assert grid == ref["image_grid_thw"][0].tolist() == [1, 4, 4]
    torch.testing.assert_close(ours, ref["pixel_values"].float(), rtol=0, atol=1e-5)


def test_qwen2_vl_video_patches_hold_consecutive_frames_in_each_temporal_patch() -> None:
    """The video processor puts frames 2k and 2k+1 in the two temporal slots of each patch; the image
    processor's patches of each frame alone fill one slot (it copies an image into both)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    side = 56
    video = frames(3, side)  # odd: the last frame is repeated to make the pair
    ip = Qwen2VLImageProcessorPil(size={"shortest_edge": side * side, "longest_edge": side * side})
    per_frame = [
        ip(images=[f], return_tensors="pt")["pixel_values"].float().view(16, 3, 2, 14, 14) for f in video
    ]
    ours, grid = qwen_patches(normalise(even_frames(video, 2), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD), 14, 2, 2)
    assert grid == [2, 4, 4]
    ours = ours.view(2, 16, 3, 2, 14, 14)
    sources = [(0, 1), (2, 2)]
    for t, (a, b) in enumerate(sources):
        torch.testing.assert_close(ours[t, :, :, 0], per_frame[a][:, :, 0], rtol=0, atol=1e-5)
        torch.testing.assert_close(ours[t, :, :, 1], per_frame[b][:, :, 1], rtol=0, atol=1e-5)


def test_idefics3_frames_equal_the_image_processor_without_splitting() -> None:
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    side = 32
    video = frames(2, side)
    ip = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": side}, max_image_size={"longest_edge": side}
    )
    ref = ip(images=[[f] for f in video], return_tensors="pt")["pixel_values"].float()
    ours = normalise(video, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    torch.testing.assert_close(ours, ref.view(2, 3, side, side), rtol=0, atol=1e-5)


def test_llava_onevision_frames_equal_the_image_processor_base_view() -> None:
    """LLaVA-OneVision's video path is its image math without the anyres tiling: resize to the tower's
    square, rescale, normalise. A frame already at that square is the image processor's base patch."""
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )

    side = 28
    frame = frames(1, side)
    ip = LlavaOnevisionImageProcessorPil(
        size={"height": side, "width": side}, image_grid_pinpoints=[[side, side]]
    )
    ref = ip(images=[frame[0]], return_tensors="pt")["pixel_values"].float()  # (1, patches, 3, S, S)
    ours = normalise(frame, ip.image_mean, ip.image_std)
    torch.testing.assert_close(ours[0], ref[0, 0], rtol=0, atol=1e-5)
