"""Connectors at another frame size than the model was built for: a stage may decode frames at its own
``sampling.image_size``, and the processor's placeholder count must match what the connector emits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_model
from PIL import Image

from sparrow.model import collate, model_inputs
from sparrow.records import Media, Sample

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("size", [32, 64, 96])
def test_mlp_pool_token_count_follows_the_frame_size(tmp_path: Path, size: int):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / f"f{i}.png")
    model, proc = tiny_model(tiny_config(type="mlp_pool", pool=2))  # built for 64 px: 8 x 8 grid
    sample = Sample(
        id="s",
        messages=[
            {"role": "user", "content": "<video>\nWhat is shown?"},
            {"role": "assistant", "content": "red"},
        ],
        media=[Media(type="frames", paths=[f"f{i}.png" for i in range(3)])],
    )
    sampling = replace(proc.sampling, image_size=size)
    x = proc(sample, tmp_path, sampling=sampling)
    side = -(-(size // 8) // 2)  # grid side at this size (patch 8), pooled by 2
    assert int((x["input_ids"] == proc.visual_token_id).sum()) == 3 * side * side
    batch = collate([x], proc.pad_token_id)
    with torch.no_grad():
        out = model(**model_inputs(batch))
    assert out.logits.shape[1] == x["input_ids"].shape[0]
