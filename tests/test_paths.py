"""One rule for the paths a config names: ``~`` is the home folder wherever it is written (a model YAML, a
recipe's inline model, an HF-native model spec), an absolute path stays, a relative one is under the
folder that named it."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_data import stage

from sparrow.adapters.spec import HFModelSpec
from sparrow.adapters.tiny import tiny_model
from sparrow.model.config import VideoLLMConfig
from sparrow.paths import resolve_path
from sparrow.train.recipe import Recipe

MODEL = {"lm": {"path": "~/models/lm", "config": None}, "vision": {"path": "towers/v"}, "tokenizer": "~/tok"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _check(cfg: VideoLLMConfig, home: Path, folder: Path) -> None:
    assert cfg.lm.path == str(home / "models" / "lm")
    assert cfg.tokenizer == str(home / "tok")
    assert cfg.vision.path == str((folder / "towers" / "v").resolve())


def test_a_model_yaml_and_a_recipe_inline_model_resolve_alike(tmp_path: Path, home: Path) -> None:
    import yaml

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "model.yaml").write_text(yaml.safe_dump(MODEL), encoding="utf-8")
    _check(VideoLLMConfig.from_yaml(folder / "model.yaml"), home, folder)
    steps = [stage("s1", ["connector"], 1, [{"path": "data.jsonl"}])]
    inline = Recipe.from_dict({"model": MODEL, "stages": steps}, base_dir=folder)
    _check(inline.model_config(), home, folder)
    by_path = Recipe.from_dict({"model": "model.yaml", "stages": steps}, base_dir=folder)
    _check(by_path.model_config(), home, folder)


def test_an_hf_model_spec_and_the_rule_itself(tmp_path: Path, home: Path) -> None:
    spec = HFModelSpec.from_dict({**tiny_model("qwen2_vl"), "tokenizer": "~/tok"}, base_dir=tmp_path)
    assert spec.tokenizer == str(home / "tok")
    assert resolve_path("~/a", tmp_path) == home / "a"
    assert resolve_path("/abs/a", tmp_path) == Path("/abs/a")
    assert resolve_path("a/b", tmp_path) == tmp_path / "a" / "b"
    assert resolve_path("a/../b", tmp_path, absolute=True) == (tmp_path / "b").resolve()
    assert resolve_path("a", None) == Path("a")
