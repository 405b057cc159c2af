"""A packaged CNN tower read at a mid-level layer (``feature_layer: stride16``): the grid, channels and
features are those of the full network's block, the later blocks are not built, and a checkpoint
reloads it exactly. Random weights (no wheel needed) unless a test says otherwise."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config, tiny_model

from sparrow.model import VisionConfig, load_pretrained
from sparrow.model.cnn_tower import CNNTower
from sparrow.model.config import ConfigError, VideoLLMConfig

pytestmark = pytest.mark.usefixtures("one_thread")
LITE0 = "efficientnet-lite0"


@pytest.mark.parametrize(("layer", "grid", "channels"), [("stride08", 14, 40), ("stride16", 7, 112)])
def test_mid_layer_is_the_full_networks_block(layer: str, grid: int, channels: int):
    torch.manual_seed(0)
    full = CNNTower(VisionConfig(packaged=LITE0, pretrained=False, config={"image_size": 112}))
    mid = CNNTower(
        VisionConfig(packaged=LITE0, pretrained=False, config={"image_size": 112}, feature_layer=layer)
    )
    state = {k: v for k, v in full.state_dict().items() if k in mid.state_dict()}
    mid.load_state_dict(state, strict=True)
    assert (mid.grid, mid.hidden_size) == (grid, channels)
    assert mid.model.net._conv_head is None  # nothing after the layer is built
    x = torch.randn(2, 3, 112, 112)
    # The same block's output inside the full network, by a forward hook.
    last = mid.model.last_block
    seen = {}
    full.model.net._blocks[last].register_forward_hook(lambda m, i, o: seen.setdefault("x", o))
    full.eval(), mid.eval()
    with torch.no_grad():
        full(x)
        got = mid(x)
    assert got.shape == (2, grid, grid, channels)
    torch.testing.assert_close(got, seen["x"].permute(0, 2, 3, 1), rtol=0, atol=0)


def test_unknown_layer_and_string_layer_on_hf_tower_are_config_errors():
    with pytest.raises(ConfigError, match="unknown feature_layer 'stride05'.*stride16"):
        VideoLLMConfig.from_dict(
            {**tiny_config().to_dict(), "vision": {"packaged": LITE0, "feature_layer": "stride05"}}
        )
    bad = tiny_config().to_dict()
    bad["vision"]["feature_layer"] = "stride16"
    with pytest.raises(ConfigError, match="Hugging Face tower takes an index"):
        VideoLLMConfig.from_dict(bad)


def test_model_on_a_mid_layer_trains_saves_and_reloads(tmp_path):
    cfg = tiny_config(
        VisionConfig(packaged=LITE0, pretrained=False, feature_layer="stride16"), type="mlp_pool", pool=2
    )
    model, proc = tiny_model(cfg)
    model.eval()  # a trainable CNN uses stochastic depth in train mode
    assert proc.geometry()[1] == 4  # 64 px -> a 4 x 4 grid at stride 16, pooled by 2 -> 2 x 2 tokens
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        before = model.encode_visual(x, [1, 1, 1])
    model.save_pretrained(tmp_path / "ckpt", processor=proc)
    again, _ = load_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        after = again.encode_visual(x, [1, 1, 1])
    torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_combined_layers_concatenate_pooled_shallow_blocks_on_the_deepest_grid():
    torch.manual_seed(0)
    vc = {"packaged": LITE0, "pretrained": False, "config": {"image_size": 112}}
    both = CNNTower(VisionConfig(**vc, feature_layer="stride02+stride08"))
    deep = CNNTower(VisionConfig(**vc, feature_layer="stride08"))
    deep.load_state_dict(both.state_dict(), strict=True)  # the same blocks, no extra parameters
    assert (both.grid, both.hidden_size, both.patch_size) == (14, 16 + 40, 8)
    seen = {}
    both.model.net._blocks[0].register_forward_hook(lambda m, i, o: seen.setdefault("s02", o))
    both.eval(), deep.eval()
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        got, ref = both(x), deep(x)
    assert got.shape == (2, 14, 14, 56)
    torch.testing.assert_close(got[..., 16:], ref, rtol=0, atol=0)
    # The stride-2 block's 56 x 56 map averaged over 4 x 4 cells: cell (i, j) of the 14 x 14 grid.
    s02 = seen["s02"]
    cell = s02[:, :, 8:12, 20:24].mean(dim=(2, 3))
    torch.testing.assert_close(got[:, 2, 5, :16], cell, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="head cannot be combined"):
        VideoLLMConfig.from_dict(
            {**tiny_config().to_dict(), "vision": {"packaged": LITE0, "feature_layer": "head+stride08"}}
        )
