"""`sparrow train` / `eval` with HF-native families (tiny random models from config dicts): a 3-stage
recipe (projector; tower + projector; projector + LoRA on the LM) trains, resumes exactly after a kill,
and the final checkpoint evaluates under the video, frame and text conditions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_data import make_data, stage

from sparrow.adapters.tiny import tiny_model
from sparrow.eval.config import EvalOptions
from sparrow.eval.runner import evaluate_checkpoint
from sparrow.train.options import RunOptions
from sparrow.train.recipe import Recipe
from sparrow.train.rundir import TrainError, read_metrics
from sparrow.train.trainer import train

FAMILIES = ["qwen2_vl", "llava_onevision", "idefics3"]


class _Kill(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    d = make_data(tmp_path_factory.mktemp("adapters_train"), n_text=6, n_frames=6, videos=2)
    with (d / "bench.jsonl").open("w") as f:
        for i, (opts, ans) in enumerate(
            [(["red", "blue"], "A"), (["short", "long"], "B"), (["up", "down"], "A")]
        ):
            row = {
                "id": f"q{i}",
                "video": f"videos/v{i % 2}.mp4",
                "question": "What is shown?",
                "options": opts,
            }
            f.write(json.dumps({**row, "answer": ans, "category": "c"}) + "\n")
    return d


def recipe(family: str, **stage_kw) -> Recipe:
    sources = [{"path": "text.jsonl"}, {"path": "frames.jsonl"}, {"path": "videos.jsonl"}]
    kw = {"steps": 2, "batch_size": 2, "micro_batch_size": 1, "seq_length": 512, **stage_kw}
    lora = {"lora": {"r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]}}
    return Recipe.from_dict(
        {
            "model": tiny_model(family),
            "seed": 0,
            "num_workers": 0,
            "checkpoint_every": 1,
            "precision": "fp32",
            "feature_cache": False,
            "stages": [
                stage("projector", ["connector"], sources=sources, **kw),
                stage("tower", ["vision", "connector"], sources=sources, **kw),
                {
                    **stage("lm", ["connector", "lm"], sources=sources, **kw),
                    "trainable": {"connector": {}, "lm": lora},
                },
            ],
        }
    )


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


@pytest.mark.parametrize("family", FAMILIES)
def test_three_stages_resume_exactly_and_evaluate(family: str, data: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    summary = train(recipe(family), RunOptions(out=full, data_root=data, threads=1))
    assert [s["steps"] for s in summary["stages"]] == [2, 2, 2]
    s1, s2 = weights(Path(summary["stages"][0]["path"])), weights(Path(summary["stages"][1]["path"]))
    tower = [k for k in s1 if any(t in k for t in ("visual.blocks", "vision_tower", "vision_model"))]
    assert tower and any(not torch.equal(s1[k], s2[k]) for k in tower)  # stage 2 trained the tower
    final = weights(full / "final")
    assert all(torch.equal(s2[k], final[k]) for k in tower)  # stage 3 left it alone
    assert (full / "final" / "peft" / "adapter_config.json").is_file()

    killed = tmp_path / "killed"

    def kill(event: dict) -> None:
        if event["event"] == "step" and event["stage"] == 2 and event["step"] == 2:
            raise _Kill  # after the checkpoint of stage 2 step 1

    with pytest.raises(_Kill):
        train(recipe(family), RunOptions(out=killed, data_root=data, progress=kill, threads=1))
    events: list[dict] = []
    train(
        recipe(family), RunOptions(out=killed, data_root=data, resume=True, progress=events.append, threads=1)
    )
    assert [(e["stage"], e["step"]) for e in events if e["event"] == "step"] == [(2, 2), (3, 1), (3, 2)]
    curve = [(r["stage"], r["step"], r["loss"]) for r in read_metrics(full / "metrics.jsonl")]
    assert [(r["stage"], r["step"], r["loss"]) for r in read_metrics(killed / "metrics.jsonl")] == curve
    resumed = weights(killed / "final")
    assert resumed.keys() == final.keys() and all(torch.equal(final[k], resumed[k]) for k in final)
    a, b = (
        load_file(str(full / "final" / "adapters.safetensors")),
        load_file(str(killed / "final" / "adapters.safetensors")),
    )
    assert a and all(torch.equal(a[k], b[k]) for k in a)

    opts = EvalOptions(conditions=("video", "frame", "text"), threads=1)
    results = evaluate_checkpoint(full / "final", data / "bench.jsonl", tmp_path / "eval", opts)
    assert [r.condition for r in results] == ["video", "frame", "text"]
    for r in results:
        assert r.errors == 0 and r.metrics["n"] == 3, (r.condition, r.metrics)


def test_packing_is_refused_for_a_model_that_cannot_pack(data: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="packing: false"):
        train(recipe("qwen2_vl", packing=True), RunOptions(out=tmp_path / "p", data_root=data, threads=1))


def test_cli_trains_merges_and_evaluates_an_hf_native_model(data: Path, tmp_path: Path, capsys) -> None:
    import yaml
    from transformers import AutoModelForImageTextToText

    from sparrow.cli import main

    d = recipe("idefics3").to_dict()
    d["stages"] = d["stages"][2:]
    del d["base_dir"]
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump(d))
    out = tmp_path / "o"
    args = ["train", str(cfg), "--out", str(out), "--data-root", str(data), "--threads", "1", "--merge"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0, capsys.readouterr().err
    merged = out / "final-merged"
    assert (out / "final" / "peft").is_dir() and not (merged / "peft").exists()
    assert (
        AutoModelForImageTextToText.from_pretrained(merged, local_files_only=True).config.model_type
        == "idefics3"
    )
    bench = data / "bench.jsonl"
    with pytest.raises(SystemExit) as e:
        main(
            [
                "eval",
                "--model",
                str(merged),
                "--bench",
                str(bench),
                "--out",
                str(tmp_path / "e"),
                "--condition",
                "video,text",
            ]
        )
    assert e.value.code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "e" / "text" / "metrics.json").read_text())["n"] == 3
