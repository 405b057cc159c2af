"""The decoded-clip cache's byte budget, and the training run's use of it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from train_data import make_data, model_config, stage

from sparrow.model.media import ClipCache
from sparrow.train.recipe import Recipe, RecipeError


def _clip(frames: int) -> SimpleNamespace:
    return SimpleNamespace(frames=np.zeros((frames, 8, 8, 3), dtype=np.uint8))  # 192 bytes a frame


def test_byte_budget_evicts_least_recently_used_clips():
    cache = ClipCache(100, max_bytes=1000)
    cache.put(("a",), _clip(2))  # 384 bytes
    cache.put(("b",), _clip(2))  # 768
    assert cache.get(("a",)) is not None  # a is now the most recent
    cache.put(("c",), _clip(2))  # 1152 > 1000: b goes
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is not None and cache.get(("c",)) is not None
    assert cache.bytes == 768
    cache.put(("a",), _clip(1))  # replacing an entry re-counts its size
    assert cache.bytes == 192 + 384
    cache.put(("huge",), _clip(10))  # bigger than the whole budget: not kept, nothing evicted
    assert cache.get(("huge",)) is None and cache.bytes == 576


def test_capacity_still_bounds_the_count():
    cache = ClipCache(2)
    for k in "abc":
        cache.put((k,), _clip(1))
    assert cache.get(("a",)) is None and cache.bytes == 384


def test_recipe_clip_cache_setting():
    stage = {
        "name": "s",
        "mixture": [{"path": "x.jsonl"}],
        "steps": 1,
        "batch_size": 1,
        "trainable": ["lm"],
        "lr": 1e-3,
    }
    assert Recipe.from_dict({"model": "m.yaml", "stages": [stage]}).clip_cache_mb == 512.0
    assert Recipe.from_dict({"model": "m.yaml", "stages": [stage], "clip_cache_mb": 0}).clip_cache_mb == 0
    with pytest.raises(RecipeError, match="clip_cache_mb"):
        Recipe.from_dict({"model": "m.yaml", "stages": [stage], "clip_cache_mb": -1})


@pytest.mark.parametrize(("clip_cache_mb", "decodes"), [(512.0, 3), (0.0, 12)])
def test_training_decodes_each_clip_once_with_the_cache(tmp_path, monkeypatch, clip_cache_mb, decodes):
    """12 samples over 3 videos (4 epochs): the cache decodes each video once, without it every sample."""
    import sparrow.video as V
    from sparrow.train.options import RunOptions
    from sparrow.train.trainer import train

    data = make_data(tmp_path / "data", n_text=0, n_frames=0, videos=3)
    calls: list[str] = []
    real = V.sample

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(V, "sample", counting)
    recipe = Recipe.from_dict(
        {
            "model": model_config(),
            "num_workers": 0,  # the cache then lives in this process, where the counter is
            "clip_cache_mb": clip_cache_mb,
            "stages": [
                stage("s", ["connector"], 4, [{"path": "videos.jsonl"}], batch_size=3, micro_batch_size=3)
            ],
        }
    )
    train(recipe, RunOptions(out=tmp_path / "run", data_root=data, device="cpu", threads=1))
    assert len(calls) == decodes and len(set(calls)) == 3
