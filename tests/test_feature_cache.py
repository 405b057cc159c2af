"""The frozen-encoder feature cache: same tensors as recomputing, hits counted, never for a trainable
tower, new weights never served old features, the byte bound holds, the disk copy round-trips, and
the trainer uses it exactly in the stages that keep the tower frozen."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import tiny_model
from safetensors.torch import load_file
from train_data import make_data, model_config, stage

from sparrow.model import VideoLLM, VideoLLMConfig
from sparrow.model.feature_cache import FeatureCache
from sparrow.train.options import RunOptions
from sparrow.train.recipe import Recipe, RecipeError
from sparrow.train.rundir import read_metrics
from sparrow.train.trainer import train


@pytest.fixture(scope="module")
def tiny():
    cfg = VideoLLMConfig.from_dict(model_config())
    model, _ = tiny_model(cfg)
    model.eval()
    model.requires_grad_(False)
    return cfg, model


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def _frame_bytes(model: VideoLLM) -> int:
    with torch.no_grad():
        f = model.vision(_frames(1))
    return f[0].numel() * f.element_size()


def test_same_tensors_as_recomputing_and_hits_counted(tiny):
    cfg, model = tiny
    enc = model.vision
    x = _frames(3)
    x = torch.cat([x, x[:1]])  # a repeated frame is computed once
    cache = FeatureCache()
    with torch.no_grad():
        direct = enc(x)
        first = cache.features(enc, x, cfg)
        second = cache.features(enc, x, cfg)
    torch.testing.assert_close(first, direct, atol=1e-6, rtol=1e-6)
    assert torch.equal(second, first) and torch.equal(first[3], first[0])
    # Every frame is a miss or a hit: 3 computed + 1 repeat, then 4 hits.
    assert (cache.stats.misses, cache.stats.hits, cache.stats.entries) == (3, 5, 3)
    # Another frame order and a subset are still hits.
    with torch.no_grad():
        third = cache.features(enc, x[[2, 0]], cfg)
    assert torch.equal(third, first[[2, 0]]) and cache.stats.hits == 7 and cache.stats.misses == 3


def test_a_trainable_tower_bypasses_the_cache(tiny):
    cfg, base = tiny
    enc = copy.deepcopy(base.vision)
    cache = FeatureCache()
    x = _frames(2)
    enc.requires_grad_(True)
    out = cache.features(enc, x, cfg)
    assert out.requires_grad  # the tower really ran, with its graph
    enc.requires_grad_(False)
    # A module really in train mode (dropout, batch-norm statistics) is not cacheable either, even with
    # frozen weights: the bare tower has no frozen-stays-eval rule.
    enc.tower.train()
    assert enc.tower.training
    cache.features(enc.tower, x, cfg)
    assert cache.stats.bypassed == 4 and cache.stats.misses == 0 and cache.stats.entries == 0


def test_a_frozen_tower_is_cached_after_model_train(tiny):
    """model.train() used to put the frozen tower's wrapper in train mode, so the cache bypassed
    every frame of every training step."""
    cfg, base = tiny
    model = copy.deepcopy(base)
    model.requires_grad_(True)
    model.vision.requires_grad_(False)  # freeze the tower only
    model.feature_cache = FeatureCache()
    model.train()
    assert model.connector.training and model.lm.training
    assert not any(m.training for m in model.vision.modules())
    x = _frames(4, seed=5)
    first = model.encode_visual(x, [2, 2])
    second = model.encode_visual(x, [2, 2])
    stats = model.feature_cache.stats
    assert (stats.bypassed, stats.misses, stats.hits) == (0, 4, 4)
    assert first.requires_grad  # the connector still trains on the cached features
    torch.testing.assert_close(second, first)
    model.vision.requires_grad_(True)  # unfrozen: train() puts it back in train mode, no cache
    model.train()
    assert model.vision.training
    model.encode_visual(x, [2, 2])
    assert stats.bypassed == 4


def test_changed_weights_are_never_served_old_features(tiny):
    cfg, base = tiny
    enc = copy.deepcopy(base.vision)
    cache = FeatureCache()
    x = _frames(2)
    with torch.no_grad():
        before = cache.features(enc, x, cfg)
        next(enc.parameters()).add_(0.5)  # an optimizer step, in place
        after = cache.features(enc, x, cfg)
        direct = enc(x)
    assert cache.stats.misses == 4 and cache.stats.hits == 0
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, direct, atol=1e-6, rtol=1e-6)
    # A weight changed behind autograd's back (.data, no version bump) is caught by the value sample.
    with torch.no_grad():
        p = next(enc.parameters())
        p.data.copy_(p.data * 0.5)
        cache.features(enc, x, cfg)
    assert cache.stats.misses == 6
    # Another config (another tower identity) never shares entries either.
    other = copy.deepcopy(cfg)
    other.vision.feature_layer = -1 if cfg.vision.feature_layer != -1 else -2
    with torch.no_grad():
        cache.features(enc, x, other)
    assert cache.stats.misses == 8


def test_the_byte_bound_holds_and_eviction_is_lru(tiny):
    cfg, model = tiny
    size = _frame_bytes(model)
    cache = FeatureCache(max_bytes=int(2.5 * size))
    frames = _frames(5, seed=1)
    with torch.no_grad():
        for i in range(3):
            cache.features(model.vision, frames[i : i + 1], cfg)
            assert cache.stats.bytes <= cache.max_bytes
        assert cache.stats.entries == 2 and cache.stats.evictions == 1  # frame 0 went
        cache.features(model.vision, frames[1:2], cfg)  # touch frame 1: now the most recent
        cache.features(model.vision, frames[3:4], cfg)  # evicts frame 2, keeps frame 1
        hits = cache.stats.hits
        cache.features(model.vision, frames[1:2], cfg)
        assert cache.stats.hits == hits + 1
        cache.features(model.vision, frames[2:3], cfg)
    assert cache.stats.misses == 5 and cache.stats.bytes <= cache.max_bytes
    tiny_cache = FeatureCache(max_bytes=size - 1)  # too small for one frame: stores nothing
    with torch.no_grad():
        tiny_cache.features(model.vision, frames[:2], cfg)
    assert tiny_cache.stats.entries == 0 and tiny_cache.stats.bytes == 0


def test_disk_round_trip(tiny, tmp_path):
    cfg, model = tiny
    x = _frames(3, seed=2)
    with torch.no_grad():
        first = FeatureCache(disk_dir=tmp_path / "fc").features(model.vision, x, cfg)
        files = sorted((tmp_path / "fc").rglob("*.safetensors"))
        assert len(files) == 3 and not list((tmp_path / "fc").rglob("*.tmp"))
        assert load_file(str(files[0]))["features"].shape == first.shape[1:]
        fresh = FeatureCache(disk_dir=tmp_path / "fc")  # another process, later: nothing in memory
        again = fresh.features(model.vision, x, cfg)
    assert torch.equal(again, first)
    assert (fresh.stats.disk_hits, fresh.stats.misses, fresh.stats.entries) == (3, 0, 3)


def test_model_forward_with_the_cache_gives_the_same_logits(tiny):
    cfg, model = tiny
    ids = torch.randint(5, 1000, (2, 24))
    ids[:, 2:10] = model.visual_token_id
    kwargs = {"pixel_values": _frames(2, seed=3), "group_sizes": torch.tensor([1, 1])}
    with torch.no_grad():
        ref = model(ids, **kwargs).logits
        model.feature_cache = FeatureCache()
        try:
            a = model(ids, **kwargs).logits
            b = model(ids, **kwargs).logits
        finally:
            cache, model.feature_cache = model.feature_cache, None
    torch.testing.assert_close(a, ref, atol=1e-5, rtol=1e-5)
    assert torch.equal(a, b) and cache.stats.hits == 2


# ------------------------------------------------------------------------------------------ trainer


def _recipe(cache) -> Recipe:
    sources = [{"path": "frames.jsonl"}]
    stages = [
        stage("vision", ["vision", "connector"], 2, sources),
        stage("frozen", ["connector", "lm"], 4, sources, packing=True),
    ]
    return Recipe.from_dict(
        {"model": model_config(), "seed": 2, "stages": stages, "num_workers": 0, "feature_cache": cache}
    )


def test_recipe_feature_cache_settings():
    assert _recipe(False).feature_cache.enabled is False
    r = _recipe({"memory_mb": 64, "dir": "fc"})
    assert r.feature_cache.enabled and r.feature_cache.memory_mb == 64 and r.feature_cache.dir == "fc"
    with pytest.raises(RecipeError, match="feature_cache"):
        _recipe({"size": 1})


def test_trainer_uses_the_cache_only_for_a_frozen_tower(tmp_path):
    data = make_data(tmp_path / "data", n_text=2)
    on, off = tmp_path / "on", tmp_path / "off"
    summary = train(_recipe({"memory_mb": 64, "dir": "fc"}), RunOptions(out=on, data_root=data, threads=1))
    train(_recipe(False), RunOptions(out=off, data_root=data, threads=1))
    vision, frozen = summary["stages"]
    assert "feature_cache" not in vision  # the stage trains the tower: no cache
    fc = frozen["feature_cache"]
    # Solid-colour records of 2 frames: 3 distinct frames, computed once; every other frame is a hit.
    assert fc["misses"] == 3 and fc["hits"] >= 20, fc
    assert list((on / "fc").rglob("*.safetensors"))
    a, b = read_metrics(on / "metrics.jsonl"), read_metrics(off / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
