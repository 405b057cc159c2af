"""The video-LLM on tiny random models: every connector, one and two encoders, label masks, packing,
save/load, gradient checkpointing, scoring and generation."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config, tiny_model
from PIL import Image

from sparrow.model import (
    IGNORE_INDEX,
    Processor,
    VisionConfig,
    collate,
    load_pretrained,
    model_inputs,
)
from sparrow.model.inference import generate, score_options
from sparrow.records import Media, Sample

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Eight 40x50 frames (random colours: different sizes and aspect than the model's input)."""
    d = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(d / f"f{i}.png")
    return d


def frames_sample(n: int = 8, answer: str = "B. two", sid: str = "v") -> Sample:
    return Sample(
        id=sid,
        messages=[
            {"role": "user", "content": "<video>\nHow many squares appear in the video?"},
            {"role": "assistant", "content": answer},
        ],
        media=[Media(type="frames", paths=[f"f{i}.png" for i in range(n)])],
    )


def image_sample() -> Sample:
    return Sample(
        id="i",
        messages=[
            {"role": "user", "content": "<image>\nWhat color is it?"},
            {"role": "assistant", "content": "red"},
        ],
        media=[Media(type="image", path="f3.png")],
    )


def text_sample(sid: str = "t", answer: str = "A square has four sides.") -> Sample:
    return Sample(
        id=sid,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is a square?"},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "And a triangle?"},
            {"role": "assistant", "content": "Three sides."},
        ],
    )


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Log-prob of each next-token label (0 where ignored); the trainer's causal shift."""
    lp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    tgt = labels[:, 1:]
    picked = lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * (tgt != IGNORE_INDEX)


def per_sample_logprob(logits: torch.Tensor, batch: dict, n: int) -> list[float]:
    picked = token_logprobs(logits, batch["labels"])
    seq = batch["seq_index"][:, 1:]
    return [float(picked[seq == i].sum()) for i in range(n)]


def ce_loss(out, batch) -> torch.Tensor:
    logits = out.logits[:, :-1].flatten(0, 1).float()
    return F.cross_entropy(logits, batch["labels"][:, 1:].flatten(), ignore_index=IGNORE_INDEX)


# ------------------------------------------------------------------------------- forward/backward


CONNECTORS = [
    ("perceiver", "frame"),
    ("perceiver", "clip"),
    ("mlp_pool", "frame"),
    ("mlp_pool", "clip"),
    ("pixel_shuffle", "frame"),
    ("pixel_shuffle", "clip"),
]


@pytest.mark.parametrize("kind,per", CONNECTORS)
def test_forward_backward_every_connector(root, kind, per):
    cfg = tiny_config(type=kind, tokens_per=per)
    model, proc = tiny_model(cfg)
    feats = [proc(frames_sample(8), root), proc(image_sample(), root), proc(text_sample(), root)]
    n_tok = proc.tokens_per_group()
    expected_groups = [1] * 8 if per == "frame" else [4, 4]
    assert feats[0]["group_sizes"].tolist() == expected_groups
    assert int((feats[0]["input_ids"] == proc.visual_token_id).sum()) == len(expected_groups) * n_tok
    assert int((feats[1]["input_ids"] == proc.visual_token_id).sum()) == n_tok
    batch = collate(feats, proc.pad_token_id)
    out = model(**model_inputs(batch))
    assert out.logits.shape == (3, batch["input_ids"].shape[1], 1024)
    loss = ce_loss(out, batch)
    assert torch.isfinite(loss)
    loss.backward()
    for part, module in model.parts().items():
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), part
        assert sum(float(g.abs().sum()) for g in grads) > 0, f"{part} got no gradient signal"


def test_connector_output_shapes():
    from sparrow.model.config import ConnectorConfig
    from sparrow.model.connector import build_connector

    c = ConnectorConfig(
        type="perceiver",
        resampler_n_latents=5,
        resampler_depth=2,
        resampler_n_heads=4,
        resampler_head_dim=8,
        num_key_value_heads=2,
    )
    conn = build_connector(c, in_dim=12, out_dim=16, grid=6)
    groups = [torch.randn(4, 6, 6, 12), torch.randn(1, 6, 6, 12)]
    assert conn(groups).shape == (2, 5, 16)
    # Padding of the shorter group is masked: its output equals running it alone.
    torch.testing.assert_close(conn(groups)[1], conn([groups[1]])[0], atol=1e-5, rtol=1e-5)
    pool = build_connector(ConnectorConfig(type="mlp_pool", pool=4), 12, 16, grid=6)
    assert pool(groups).shape == (2, 4, 16)  # ceil(6 / 4) = 2 -> 2 x 2 tokens
    shuffle = build_connector(ConnectorConfig(type="pixel_shuffle", shuffle_factor=3), 12, 16, grid=6)
    assert shuffle(groups).shape == (2, 4, 16)
    # Pixel shuffle is space-to-depth: token (0, 0) sees exactly the top-left 3x3 patches.
    x = torch.zeros(1, 6, 6, 12)
    x[0, 3:, 3:] = 1.0  # change only the bottom-right block
    base = shuffle([torch.zeros(1, 6, 6, 12)])
    moved = shuffle([x])
    torch.testing.assert_close(moved[0, 0], base[0, 0])
    assert not torch.allclose(moved[0, 3], base[0, 3])


def test_text_only_batch_keeps_vision_in_graph(root):
    model, proc = tiny_model(tiny_config())
    batch = collate([proc(text_sample(), root), proc(text_sample("t2", "No."), root)], proc.pad_token_id)
    assert batch["pixel_values"] is None
    out = model(**model_inputs(batch))
    ce_loss(out, batch).backward()
    # Every vision / connector parameter is in the graph (zero gradient): DDP never waits for them.
    for part in ("vision", "connector"):
        for name, p in model.parts()[part].named_parameters():
            assert p.grad is not None, f"{part}.{name} not in the graph"
            assert float(p.grad.abs().sum()) == 0.0
    # In inference the dummy frame is skipped and the logits are those of the LM alone.
    with torch.no_grad():
        direct = model.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        torch.testing.assert_close(model(**model_inputs(batch)).logits, direct)


def test_feature_layer_and_unused_tower_parameters(root):
    cfg = tiny_config()
    cfg.vision.feature_layer = -2  # penultimate layer: the last layer and post-layernorm go unused
    model, proc = tiny_model(cfg)
    tower = model.vision.tower
    assert getattr(tower.model, "head", None) is None  # SigLIP's pooling head is not built
    pix = proc(frames_sample(2), root)["pixel_values"]
    with torch.no_grad():
        hidden = tower.model(pixel_values=pix, output_hidden_states=True).hidden_states[-2]
        torch.testing.assert_close(model.vision(pix), hidden.reshape(2, 8, 8, 64))
    model.vision(pix).sum().backward()
    # Unused parameters are tied in with weight zero: gradients exist (DDP needs them) and are zero.
    assert "post_layernorm.weight" in tower._unused
    for name, p in tower.model.named_parameters():
        assert p.grad is not None, name
        if name in tower._unused:
            assert float(p.grad.abs().sum()) == 0.0


def test_dual_encoder_features(root):
    cfg = tiny_config()
    second = copy.deepcopy(cfg.vision.config)
    second.update(hidden_size=32, num_attention_heads=2, image_size=48, patch_size=16)  # 3x3 grid
    cfg.vision2 = VisionConfig(config=second, image_mean=[0.4, 0.45, 0.5], image_std=[0.25, 0.25, 0.3])
    model, proc = tiny_model(cfg)
    enc = model.vision
    assert enc.out_dim == 64 + 32
    pix = proc(frames_sample(4), root)["pixel_values"]
    feats = enc(pix)
    assert feats.shape == (4, 8, 8, 96)
    torch.testing.assert_close(feats[..., :64], enc.tower(pix))
    # The second tower saw the same frames, re-normalised with its own statistics at its own size.
    x01 = pix * 0.5 + 0.5
    x2 = F.interpolate(x01, size=(48, 48), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor([0.4, 0.45, 0.5]).view(1, 3, 1, 1)
    std = torch.tensor([0.25, 0.25, 0.3]).view(1, 3, 1, 1)
    f2 = enc.tower2((x2 - mean) / std)  # (4, 3, 3, 32)
    want = F.interpolate(f2.permute(3, 0, 1, 2)[None], size=(4, 8, 8), mode="trilinear", align_corners=False)
    torch.testing.assert_close(feats[..., 64:], want[0].permute(1, 2, 3, 0), atol=1e-5, rtol=1e-5)
    # By hand: cell 4 of 8 samples source coordinate (4 + 0.5) * 3 / 8 - 0.5 = 1.1875 on each axis,
    # i.e. 0.8125 of source cell 1 and 0.1875 of cell 2; the time axis (4 -> 4) is unchanged.
    w = {1: 0.8125, 2: 0.1875}
    by_hand = sum(w[i] * w[j] * f2[:, i, j] for i in w for j in w)
    torch.testing.assert_close(feats[:, 4, 4, 64:], by_hand, atol=1e-5, rtol=1e-5)
    batch = collate([proc(frames_sample(4), root), proc(text_sample(), root)], proc.pad_token_id)
    ce_loss(model(**model_inputs(batch)), batch).backward()
    assert all(p.grad is not None for p in enc.tower2.parameters())


# ------------------------------------------------------------------------------------ label masks


def test_labels_exactly_on_assistant_tokens(root):
    _, proc = tiny_model(tiny_config())
    tok = proc.tokenizer
    f = proc(text_sample(), root)
    ids, labels = f["input_ids"], f["labels"]
    # The inputs are the chat-template rendering, token for token.
    rendered = tok.apply_chat_template(text_sample().messages, tokenize=False)
    assert tok.decode(ids) == rendered
    # Labelled tokens are the replies and their end-of-turn tokens, and nothing else.
    labelled = labels != IGNORE_INDEX
    assert torch.equal(labels[labelled], ids[labelled])
    runs, cur = [], []
    for i, flag in enumerate(labelled.tolist()):
        if flag:
            cur.append(int(ids[i]))
        elif cur:
            runs.append(cur)
            cur = []
    assert [tok.decode(r) for r in runs] == ["A square has four sides.<|im_end|>", "Three sides.<|im_end|>"]
    # Each labelled run starts right after "<|im_start|>assistant\n".
    prompt_ids = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    starts = [i for i in range(1, len(labelled)) if labelled[i] and not labelled[i - 1]]
    for s in starts:
        assert ids[s - len(prompt_ids) : s].tolist() == prompt_ids
    # Visual tokens are never labelled.
    fv = proc(frames_sample(), root)
    assert not bool((fv["labels"][fv["input_ids"] == proc.visual_token_id] != IGNORE_INDEX).any())
    assert tok.decode(fv["input_ids"][fv["labels"] != IGNORE_INDEX]) == "B. two<|im_end|>"


# ---------------------------------------------------------------------------------------- packing


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("mode", ["mask", "per_sample"])
def test_packing_gives_the_same_per_sample_losses(root, attn, mode):
    cfg = tiny_config()
    cfg.lm.attn_implementation = attn
    model, proc = tiny_model(cfg)
    model.eval()
    model.packed_attention = mode  # the block-diagonal mask, or each sample in a padded row of its own
    feats = [
        proc(frames_sample(8), root),
        proc(text_sample(), root),
        proc(frames_sample(3, answer="C. three", sid="v3"), root),
        proc(image_sample(), root),
    ]
    unpacked = collate(feats, proc.pad_token_id)
    packed = collate(feats, proc.pad_token_id, pack=True, max_length=160)
    assert packed["input_ids"].shape[0] < len(feats)  # several samples share a row
    assert (
        packed["attention_mask"].shape
        == (packed["input_ids"].shape[0], 1) + (packed["input_ids"].shape[1],) * 2
    )
    with torch.no_grad():
        a = per_sample_logprob(model(**model_inputs(unpacked)).logits, unpacked, len(feats))
        b = per_sample_logprob(model(**model_inputs(packed)).logits, packed, len(feats))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert all(x < 0 for x in a)


def test_packed_samples_cannot_see_each_other(root):
    model, proc = tiny_model(tiny_config())
    model.eval()
    model.packed_attention = "mask"  # the mask itself (auto on a CPU runs each sample alone)
    first, second = proc(text_sample(), root), proc(image_sample(), root)
    other = proc(text_sample("t9", "Squares have equal sides and right angles."), root)
    b1 = collate([first, second], proc.pad_token_id, pack=True, max_length=400)
    b2 = collate([other, second], proc.pad_token_id, pack=True, max_length=400)
    assert b1["input_ids"].shape[0] == 1
    with torch.no_grad():
        l1, l2 = model(**model_inputs(b1)).logits, model(**model_inputs(b2)).logits
    s1, s2 = b1["seq_index"][0] == 1, b2["seq_index"][0] == 1
    torch.testing.assert_close(l1[0, s1], l2[0, s2], atol=1e-5, rtol=1e-5)
    # Positions restart at 0 for the second sample.
    assert b1["position_ids"][0, s1][0] == 0
    assert b1["position_ids"][0, s1].tolist() == list(range(int(s1.sum())))


# ------------------------------------------------------------------------------------- save / load


def test_save_load_round_trip_uses_safetensors_only(root, tmp_path, monkeypatch):
    cfg = tiny_config(type="pixel_shuffle", tokens_per="clip")
    second = copy.deepcopy(cfg.vision.config)
    second.update(hidden_size=32)
    cfg.vision2 = VisionConfig(config=second)
    model, proc = tiny_model(cfg, seed=3)
    model.eval()
    feats = [proc(frames_sample(8), root), proc(image_sample(), root)]
    batch = collate(feats, proc.pad_token_id)
    with torch.no_grad():
        before = model(**model_inputs(batch)).logits
    model.save_pretrained(tmp_path / "ckpt", processor=proc)
    files = sorted(
        p.relative_to(tmp_path / "ckpt").as_posix() for p in (tmp_path / "ckpt").rglob("*") if p.is_file()
    )
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))], files
    assert {
        "config.json",
        "connector.safetensors",
        "lm/model.safetensors",
        "vision/model.safetensors",
    } <= set(files)
    assert "vision2/model.safetensors" in files

    def no_unpickling(*a, **k):
        raise AssertionError("loading must not unpickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    import pickle

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    loaded, proc2 = load_pretrained(tmp_path / "ckpt")
    batch2 = collate([proc2(frames_sample(8), root), proc2(image_sample(), root)], proc2.pad_token_id)
    for k in ("input_ids", "labels", "group_sizes"):
        assert torch.equal(batch[k], batch2[k])
    torch.testing.assert_close(batch["pixel_values"], batch2["pixel_values"], rtol=0, atol=0)
    with torch.no_grad():
        after = loaded(**model_inputs(batch2)).logits
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert proc2.cfg.connector.type == "pixel_shuffle" and proc2.cfg.vision2 is not None
    assert Processor.from_pretrained(tmp_path / "ckpt").tokenizer.get_vocab() == proc.tokenizer.get_vocab()


def test_gradient_checkpointing_gives_the_same_gradients(root):
    model, proc = tiny_model(tiny_config())
    batch = collate([proc(frames_sample(4), root), proc(text_sample(), root)], proc.pad_token_id, pack=True)
    ce_loss(model(**model_inputs(batch)), batch).backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.enable_gradient_checkpointing()
    model.train()
    ce_loss(model(**model_inputs(batch)), batch).backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], atol=1e-5, rtol=1e-4, msg=n)


def test_tiny_training_step_is_fast(root):
    """Issue requirement: a step of 2 samples x 8 frames well under a second on one CPU core."""
    model, proc = tiny_model(tiny_config())
    batch = collate(
        [proc(frames_sample(8), root), proc(frames_sample(8, "C. three"), root)], proc.pad_token_id
    )
    assert int(batch["group_sizes"].numel()) == 16
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            ce_loss(model(**model_inputs(batch)), batch).backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    assert min(times) < 0.5, times


# ------------------------------------------------------------------------------ scoring, generation


def test_score_options_and_generate_after_overfitting(root):
    model, proc = tiny_model(tiny_config(), seed=1)
    target = frames_sample(8, answer="B. two")
    batch = collate([proc(target, root)], proc.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        loss = ce_loss(model(**model_inputs(batch)), batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert float(loss.detach()) < 0.05
    candidates = ["A. one", "B. two", "C. three", "D. four"]
    scores = score_options(model, proc, target, candidates, root)
    assert int(np.argmax(scores)) == 1
    assert model.training  # mode restored
    # The score is the summed label log-prob of the sample with that reply, minus the end-of-turn term.
    model.eval()
    for cand, score in zip(candidates[:2], scores[:2], strict=True):
        s = frames_sample(8, answer=cand)
        b = collate([proc(s, root)], proc.pad_token_id)
        with torch.no_grad():
            picked = token_logprobs(model(**model_inputs(b)).logits, b["labels"])[0]
        mask = b["labels"][0, 1:] != IGNORE_INDEX
        assert score == pytest.approx(float(picked[mask][:-1].sum()), abs=1e-4)
    assert generate(model, proc, target, root, max_new_tokens=10) == "B. two"


def test_generation_passes_the_kv_cache_the_current_way(root, monkeypatch):
    """transformers 5.24 renamed ``past_key_values`` to ``cache`` (the old name warns, and goes in 5.40):
    scoring and generation reuse the prompt's cache without touching the old name."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    model, proc = tiny_model(tiny_config())
    names: list[set[str]] = []
    forward = model.lm.forward

    def spy(*args, **kwargs):
        names.append(set(kwargs))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.lm, "forward", spy)
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    hf_logging.warning_once.cache_clear()  # a warning already given once would not show again
    hf_logging.get_logger("transformers").addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            generate(model, proc, frames_sample(2), root, max_new_tokens=3)
            score_options(model, proc, frames_sample(2), ["A. one", "B. two"], root)
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert not [m for m in messages if "deprecated" in m]
    assert len(names) >= 3 and not any("past_key_values" in n for n in names)
    assert sum("cache" in n for n in names) >= 2  # the steps after the prompt reuse its cache
