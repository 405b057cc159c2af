"""Frames -> the pixel tensors each family's vision tower reads, without transformers' video processors
(they need torchvision). The math is the image processors': ``(x / 255 - mean) / std`` per channel, and
for Qwen2-VL its patch layout (``Qwen2VLImageProcessor.patchify`` for images, the video processor's for
videos: ``temporal_patch_size`` consecutive frames per patch, merge blocks of ``merge_size`` x
``merge_size`` patches kept together). ``tests/test_adapters_pixels.py`` checks both against the PIL
image processors. Frames arrive already resized by Sparrow's decoder (a square of the family's side).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def normalise(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 frames ``(F, H, W, 3)`` -> float ``(F, 3, H, W)``, rescaled to [0, 1] and normalised."""
    x = frames.astype(np.float32).transpose(0, 3, 1, 2) * np.float32(1 / 255)
    m = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    return torch.from_numpy((x - m) / s)


def even_frames(frames: np.ndarray, multiple: int) -> np.ndarray:
    """Frames padded with copies of the last one to a multiple of ``multiple`` (Qwen2-VL's temporal
    patch: two frames per patch, the video processor pads the same way)."""
    pad = -len(frames) % multiple
    if not pad:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])


def qwen_patches(
    pixels: torch.Tensor, patch_size: int, merge_size: int, temporal_patch_size: int
) -> tuple[torch.Tensor, list[int]]:
    """Normalised frames ``(F, 3, H, W)`` (F a multiple of ``temporal_patch_size``; H, W multiples of
    ``patch_size * merge_size``) -> ``(t * h * w, 3 * tp * p * p)`` patches and the grid ``[t, h, w]``."""
    f, c, height, width = pixels.shape
    t, h, w = f // temporal_patch_size, height // patch_size, width // patch_size
    x = pixels.reshape(
        t,
        temporal_patch_size,
        c,
        h // merge_size,
        merge_size,
        patch_size,
        w // merge_size,
        merge_size,
        patch_size,
    )
    # (t, h-blocks, w-blocks, merge rows, merge cols, channel, time in patch, patch rows, patch cols)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(t * h * w, c * temporal_patch_size * patch_size * patch_size).contiguous(), [t, h, w]
