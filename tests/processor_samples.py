"""What the processor tests share: the tiny model's processors (one token group per frame, and per
clip), video and frame-sequence samples, and the processed inputs read back as text and frame codes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import TINY
from media import read_index

from sparrow.model import Processor, SamplingConfig, VideoLLMConfig
from sparrow.records import Media, Sample


@pytest.fixture(scope="module", name="proc")
def proc_fixture() -> Processor:
    return Processor(VideoLLMConfig.from_yaml(TINY))


@pytest.fixture(scope="module", name="clip_proc")
def clip_proc_fixture() -> Processor:
    cfg = VideoLLMConfig.from_yaml(TINY)
    cfg.connector.tokens_per = "clip"
    return Processor(cfg)


def video_sample(start: float | None = None, end: float | None = None) -> Sample:
    return Sample(
        id="vid",
        messages=[
            {"role": "user", "content": "<video>\nWhat happens?"},
            {"role": "assistant", "content": "A square moves."},
        ],
        media=[Media(type="video", path="a.mp4", start=start, end=end)],
    )


def frames_sample(timestamps: list[float] | None = None, n: int = 8) -> Sample:
    return Sample(
        id="frm",
        messages=[
            {"role": "user", "content": "<video>\nRead the frames."},
            {"role": "assistant", "content": "Done."},
        ],
        media=[Media(type="frames", paths=[f"f{i}.png" for i in range(n)], timestamps=timestamps)],
    )


def user_text(p: Processor, feats: dict) -> str:
    """The user turn as the model sees it, each run of visual tokens shown as <V>."""
    text = p.tokenizer.decode(feats["input_ids"])
    text = re.sub(r"(?:<\|visual\|>)+", "<V>", text)
    return text.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]


def decoded_indices(feats: dict) -> list[int]:
    """Frame codes read back from the normalised pixel values the model gets."""
    x = feats["pixel_values"].numpy() * 0.5 + 0.5
    frames = np.clip(np.round(x.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)
    return [read_index(f) for f in frames]


def sampling(**kw) -> SamplingConfig:
    base = dict(strategy="fps", fps=1.0, max_frames=8, frames_per_clip=4, timestamps="apollo")
    base.update(kw)
    return SamplingConfig(**base)
