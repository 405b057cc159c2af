"""LoRA as a training mode per part: recipe syntax, only adapters train, checkpoints carry them as
safetensors, a later stage continues them, resume is exact, merging keeps the logits, DDP works."""

from __future__ import annotations

import copy
import json
import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tiny_model
from safetensors.torch import load_file
from train_data import make_data, model_config, stage

from sparrow.model import Processor, VideoLLM, VideoLLMConfig, collate, load_pretrained
from sparrow.model.lora import (
    AdapterConfig,
    adapter_parameters,
    add_adapters,
    tuner_layers,
)
from sparrow.model.videollm import merge_checkpoint
from sparrow.train import distributed as D
from sparrow.train.optim import build_optimizer, set_trainable
from sparrow.train.options import RunOptions
from sparrow.train.recipe import Recipe, RecipeError
from sparrow.train.rundir import TrainError, read_metrics
from sparrow.train.seeds import derive_seed
from sparrow.train.trainer import Trainer, train

# Bit-for-bit comparisons below: one thread, deterministic algorithms.
pytestmark = pytest.mark.usefixtures("deterministic")

LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]}
SOURCES = [{"path": "text.jsonl", "weight": 1}, {"path": "frames.jsonl", "weight": 2}]


def _recipe(stages: list[dict], seed: int = 1, **top) -> Recipe:
    return Recipe.from_dict(
        {"model": model_config(), "seed": seed, "stages": stages, "num_workers": 0, **top}
    )


def _two_lora_stages() -> list[dict]:
    s1 = stage("lora1", [], 4, SOURCES, packing=True, checkpoint_every=2)
    s1["trainable"] = {"connector": {}, "lm": {"lora": LORA}}
    s1["lr"] = {"connector": 3e-3, "lm": 1e-2}
    # Learning rate 0: if stage 2 re-initialised the adapters instead of continuing, they would differ.
    s2 = stage("lora2", [], 1, SOURCES, packing=True)
    s2["trainable"] = {"lm": {"lora": LORA}}
    s2["lr"] = {"lm": 0.0}
    return [s1, s2]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("lora-data"))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lora-runs") / "full"
    train(_recipe(_two_lora_stages()), RunOptions(out=out, data_root=data, threads=1))
    return out


@pytest.fixture(scope="module")
def tiny():
    cfg = VideoLLMConfig.from_dict(model_config())
    model, proc = tiny_model(cfg)
    return cfg, proc, model


def _batch(proc: Processor, data: Path) -> dict:
    from sparrow.records import load_samples

    samples = load_samples(data / "frames.jsonl")[0][:2]
    feats = [proc(s, data) for s in samples]
    return collate(feats, proc.pad_token_id)


def _logits(model: VideoLLM, batch: dict) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def _state(ckpt: Path) -> dict[str, torch.Tensor]:
    model, _ = load_pretrained(ckpt)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------- recipe


def test_recipe_accepts_a_mapping_per_part_and_round_trips():
    r = _recipe(_two_lora_stages())
    s1 = r.stages[0]
    assert s1.trainable == ["connector", "lm"] and set(s1.lora) == {"lm"}
    assert s1.lora["lm"] == AdapterConfig(r=4, alpha=8.0, dropout=0.0, targets=["q_proj", "v_proj"])
    again = Recipe.from_dict({k: v for k, v in r.to_dict().items() if k != "base_dir"})
    assert again.stages[0].lora == s1.lora and again.stages[0].trainable == s1.trainable
    # The plain list still means full fine-tuning.
    plain = _recipe([stage("s", ["connector", "lm"], 1, SOURCES)])
    assert plain.stages[0].lora == {}


@pytest.mark.parametrize(
    "trainable, match",
    [
        ({"lm": {"lora": {"r": 0}}}, "r must be"),
        ({"lm": {"lora": {"rank": 4}}}, "unknown key"),
        ({"lm": {"lora": {"dropout": 1.5}}}, "dropout"),
        ({"lm": {"full": True}}, "must be"),
        ({"lm": {"lora": {"targets": []}}}, "targets"),
    ],
)
def test_recipe_lora_errors_are_one_line(trainable, match):
    s = stage("s", ["lm"], 1, SOURCES)
    s["trainable"] = trainable
    with pytest.raises(RecipeError, match=match) as e:
        _recipe([s])
    assert "\n" not in str(e.value)


def test_fsdp_with_lora_is_refused_before_training(data, tmp_path):
    recipe = _recipe(_two_lora_stages(), strategy="fsdp")
    trainer = Trainer(recipe, RunOptions(out=tmp_path / "r", data_root=data), D.DistInfo(world_size=2))
    with pytest.raises(TrainError, match="DDP"):
        trainer.run()


# ------------------------------------------------------------------------------- adapters in a model


def test_only_adapters_are_trainable_and_in_the_optimizer(tiny):
    cfg, proc, base = tiny
    model = copy.deepcopy(base)
    st = _recipe(_two_lora_stages()).stages[0]
    parts = set_trainable(model, st, seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    lm_trainable = {n for n in trainable if n.startswith("lm.")}
    assert lm_trainable and all(".lora_A." in n or ".lora_B." in n for n in lm_trainable)
    assert {n for n in trainable if n.startswith("connector.")} == {
        f"connector.{n}" for n, _ in model.connector.named_parameters()
    }
    assert not any(n.startswith("vision.") for n in trainable)
    opt = build_optimizer(st, parts)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in model.parameters() if p.requires_grad}
    # Adapters start as the identity (B = 0): the model computes what it did before.
    assert len(tuner_layers(model.lm)) == 2 * 2  # q_proj and v_proj of 2 layers


def test_save_load_round_trip_and_merge_keep_the_logits(tiny, data, tmp_path):
    cfg, proc, base = tiny
    model = copy.deepcopy(base)
    add_adapters(model, "lm", AdapterConfig(**LORA), seed=1)
    add_adapters(model, "connector", AdapterConfig(r=2, alpha=4, targets=["q_proj"]), seed=2)
    for name, p in adapter_parameters(model):
        if ".lora_B." in name:  # trained adapters are not the identity
            torch.nn.init.normal_(p, std=0.2)
    batch = _batch(proc, data)
    ref = _logits(model, batch)
    assert not torch.allclose(ref, _logits(base, batch), atol=1e-3)
    model.save_pretrained(tmp_path / "ck", processor=proc)
    assert (tmp_path / "ck" / "adapters.safetensors").is_file()
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert set(meta["adapters"]) == {"lm", "connector"} and meta["adapters"]["lm"]["r"] == 4
    # The LM folder is a plain checkpoint of the base weights (original names, no adapter keys).
    lm_keys = set(load_file(str(tmp_path / "ck" / "lm" / "model.safetensors")))
    assert not any("lora" in k or "base_layer" in k for k in lm_keys)
    loaded, _ = load_pretrained(tmp_path / "ck")
    assert set(loaded.adapters) == {"lm", "connector"}
    assert torch.equal(_logits(loaded, batch), ref)
    merged = merge_checkpoint(tmp_path / "ck", tmp_path / "merged")
    assert not (merged / "adapters.safetensors").exists()
    assert "adapters" not in json.loads((merged / "config.json").read_text())
    plain, _ = load_pretrained(merged)
    assert plain.adapters == {} and not tuner_layers(plain)
    torch.testing.assert_close(_logits(plain, batch), ref, atol=1e-5, rtol=1e-5)


def test_full_finetuning_after_lora_merges_the_adapters(tiny, data):
    cfg, proc, base = tiny
    model = copy.deepcopy(base)
    add_adapters(model, "lm", AdapterConfig(**LORA), seed=1)
    for name, p in adapter_parameters(model.lm):
        if ".lora_B." in name:
            torch.nn.init.normal_(p, std=0.2)
    batch = _batch(proc, data)
    ref = _logits(model, batch)
    set_trainable(model, _recipe([stage("full", ["lm"], 1, SOURCES)]).stages[0])
    assert model.adapters == {} and not tuner_layers(model.lm)
    assert all(p.requires_grad for p in model.lm.parameters())
    torch.testing.assert_close(_logits(model, batch), ref, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ training


def test_lora_stage_trains_only_adapters_and_a_later_stage_continues_them(run):
    recipe = _recipe(_two_lora_stages())
    cfg = VideoLLMConfig.from_dict(recipe.model)
    model, _ = tiny_model(cfg, seed=derive_seed(recipe.seed, "init"))  # as the trainer builds its model
    init = model.state_dict()
    s1, s2 = _state(run / "stage1-lora1"), _state(run / "stage2-lora2")
    base = {k.replace(".base_layer.", "."): v for k, v in s1.items() if ".lora_" not in k}
    assert set(base) == set(init)
    for k, v in init.items():  # frozen vision and the LM's base weights: bit-identical
        if k.startswith(("vision.", "lm.")):
            assert torch.equal(base[k], v), k
    assert any(not torch.equal(base[k], init[k]) for k in init if k.startswith("connector."))
    lora_b = [v for k, v in s1.items() if ".lora_B." in k]
    assert lora_b and all(float(v.abs().max()) > 0 for v in lora_b)  # they trained (start at 0)
    adapters = load_file(str(run / "stage1-lora1" / "adapters.safetensors"))
    assert adapters and all(k.startswith("lm.") for k in adapters)
    # Stage 2 (lr 0) continued the very same adapters: nothing re-initialised.
    assert set(s1) == set(s2) and all(torch.equal(s1[k], s2[k]) for k in s1)
    rows = read_metrics(run / "metrics.jsonl")
    assert len(rows) == 5 and all(math.isfinite(r["loss"]) for r in rows)


def test_resume_inside_a_lora_stage_is_exact(run, data, tmp_path):
    out = tmp_path / "killed"

    class Kill(Exception):
        pass

    def kill_at_step3(event):
        if event["event"] == "step" and event["stage"] == 1 and event["step"] == 3:
            raise Kill  # after the checkpoint of step 2

    with pytest.raises(Kill):
        # Same thread count as the uninterrupted run: float sums split over 2 threads differ from 1.
        killed = RunOptions(out=out, data_root=data, progress=kill_at_step3, threads=1)
        train(_recipe(_two_lora_stages()), killed)
    assert (out / "checkpoints" / "stage1-step0000002" / "adapters.safetensors").is_file()
    train(_recipe(_two_lora_stages()), RunOptions(out=out, data_root=data, resume=True, threads=1))
    full = [(r["stage"], r["step"], r["loss"]) for r in read_metrics(run / "metrics.jsonl")]
    resumed = [(r["stage"], r["step"], r["loss"]) for r in read_metrics(out / "metrics.jsonl")]
    assert resumed == full
    a, b = _state(run / "final"), _state(out / "final")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------------ DDP


def _ddp_recipe() -> Recipe:
    s = stage("lora", [], 3, SOURCES, packing=True)
    s["trainable"] = {"connector": {}, "lm": {"lora": LORA}}
    s["lr"] = {"connector": 3e-3, "lm": 1e-2}
    return _recipe([s], strategy="ddp")


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train(_ddp_recipe(), RunOptions(out=Path(out), data_root=Path(data), device="cpu"))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(300)
def test_lora_under_ddp_matches_one_process(data, tmp_path):
    one = tmp_path / "one"
    train(_ddp_recipe(), RunOptions(out=one, data_root=data, device="cpu", threads=1))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = tmp_path / "two"
    # fork: the children inherit the imported modules (spawn re-imports transformers: slow here).
    mp.start_processes(_ddp_worker, args=(2, port, str(data), str(two)), nprocs=2, start_method="fork")
    ref, rows = read_metrics(one / "metrics.jsonl"), read_metrics(two / "metrics.jsonl")
    assert len(rows) == len(ref) == 3
    for a, b in zip(ref, rows, strict=True):
        assert b["supervised_tokens"] == a["supervised_tokens"]
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    wa, wb = _state(one / "final"), _state(two / "final")
    assert any(".lora_B." in k for k in wa)
    for k, v in wa.items():
        torch.testing.assert_close(wb[k], v, atol=2e-5, rtol=1e-4)


def test_cli_train_merge_writes_a_merged_export(data, tmp_path):
    import yaml

    from sparrow.cli import main

    recipe = _recipe(_two_lora_stages()[:1]).to_dict()
    del recipe["base_dir"]
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "o"
    args = ["train", str(cfg), "--out", str(out), "--data-root", str(data), "--max-steps", "2"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--threads", "1", "--merge"])
    assert e.value.code == 0
    assert (out / "final" / "adapters.safetensors").is_file()
    assert not (out / "final-merged" / "adapters.safetensors").exists()
    adapted, proc = load_pretrained(out / "final")
    merged, _ = load_pretrained(out / "final-merged")
    assert merged.adapters == {} and set(adapted.adapters) == {"lm"}
    batch = _batch(proc, data)
    torch.testing.assert_close(_logits(merged, batch), _logits(adapted, batch), atol=1e-5, rtol=1e-5)
