"""``sparrow train --init-from CKPT``: the recipe's model is replaced by the checkpoint's weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_model
from train_data import make_data, model_config, stage

from sparrow.cli import main
from sparrow.model import load_pretrained

pytestmark = pytest.mark.usefixtures("one_thread")


def _recipe(tmp_path: Path) -> Path:
    recipe = {
        "model": model_config(),
        "seed": 0,
        "num_workers": 0,
        "stages": [stage("s", ["connector"], 1, [{"path": "text.jsonl"}])],
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_init_from_starts_from_the_checkpoint(tmp_path: Path):
    data = make_data(tmp_path / "data")
    torch.manual_seed(123)
    start, proc = tiny_model()
    with torch.no_grad():
        start.lm.get_input_embeddings().weight.mul_(3.0)  # unlike any freshly built model
    ckpt = tmp_path / "start"
    start.save_pretrained(ckpt, processor=proc)
    out = tmp_path / "run"
    args = ["train", str(_recipe(tmp_path)), "--out", str(out), "--data-root", str(data), "--threads", "1"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--init-from", str(ckpt)])
    assert e.value.code == 0
    trained, _ = load_pretrained(out / "final")
    # Only the connector trained: the LM is the checkpoint's, bit for bit.
    torch.testing.assert_close(
        trained.lm.get_input_embeddings().weight, start.lm.get_input_embeddings().weight, rtol=0, atol=0
    )


def test_init_from_must_be_a_checkpoint(tmp_path: Path):
    with pytest.raises(SystemExit) as e:
        main(["train", str(_recipe(tmp_path)), "--out", str(tmp_path / "o"), "--init-from", str(tmp_path)])
    assert e.value.code == 2
