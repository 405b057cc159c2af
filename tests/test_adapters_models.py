"""HF-native families behind Sparrow's model interface: tiny random models built offline from config
dicts, fed Sparrow records with a video; logits equal the transformers model's own on the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_data import make_data

from sparrow.adapters import HFModelSpec, PackingError, build, load_pretrained
from sparrow.adapters.tiny import tiny_model
from sparrow.model import collate, model_inputs
from sparrow.model.lora import AdapterConfig, add_adapters, tuner_layers
from sparrow.records import Sample

FAMILIES = ["qwen2_vl", "llava_onevision", "idefics3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_data(tmp_path_factory.mktemp("adapters"), n_text=2, n_frames=3, videos=1)


def records(root: Path) -> list[Sample]:
    video = json.loads((root / "videos.jsonl").read_text().splitlines()[0])
    frames = json.loads((root / "frames.jsonl").read_text().splitlines()[0])
    return [Sample.from_dict(video), Sample.from_dict(frames)]


def tiny(family: str):
    torch.manual_seed(0)
    return build(HFModelSpec.from_dict(tiny_model(family)))


def native_logits(model, batch: dict) -> torch.Tensor:
    """The transformers model's own forward on the same sample, in its own input names."""
    hf, ids, pix, lay = model.hf, batch["input_ids"], batch["pixel_values"], batch["group_sizes"]
    if model.family == "qwen2_vl":
        grid = lay.view(-1, 4)[:, :3]
        types = (ids == hf.config.video_token_id).int() * 2
        return hf(input_ids=ids, pixel_values_videos=pix, video_grid_thw=grid, mm_token_type_ids=types).logits
    if model.family == "llava_onevision":
        return hf(input_ids=ids, pixel_values_videos=pix[None]).logits
    return hf(input_ids=ids, pixel_values=pix[None]).logits


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_matches_transformers_and_trains(family: str, data: Path) -> None:
    model, proc = tiny(family)
    feats = [proc(s, data) for s in records(data)]
    one = collate(feats[:1], proc.pad_token_id)
    model.eval()
    with torch.no_grad():
        ours = model(**model_inputs(one)).logits
        theirs = native_logits(model, one)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    model.train()
    batch = collate(feats, proc.pad_token_id)
    labels = batch["labels"]
    at = torch.nn.functional.pad(labels[:, 1:] != -100, (0, 1), value=False)
    logits = model(**model_inputs(batch), logits_at=at).logits
    assert logits.shape[0] == int((labels[:, 1:] != -100).sum()) > 0
    torch.nn.functional.cross_entropy(logits, labels[:, 1:][labels[:, 1:] != -100]).backward()
    for part, module in model.parts().items():
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), part
        assert any(float(g.abs().sum()) > 0 for g in grads), part


@pytest.mark.parametrize("family", FAMILIES)
def test_parts_are_disjoint_and_cover_the_model(family: str) -> None:
    model, _ = tiny(family)
    parts = model.parts()
    assert set(parts) == {"vision", "connector", "lm"}
    seen: dict[int, str] = {}
    for name, module in parts.items():
        for p in module.parameters():
            assert id(p) not in seen, f"{name} shares a parameter with {seen.get(id(p))}"
            seen[id(p)] = name
    assert {id(p) for p in model.hf.parameters()} == set(seen)
    if family == "qwen2_vl":
        merger = {id(p) for p in model.hf.model.visual.merger.parameters()}
        assert merger and all(seen[i] == "connector" for i in merger)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_lands_only_in_the_part_asked(family: str) -> None:
    model, _ = tiny(family)
    add_adapters(model, "lm", AdapterConfig(r=4, alpha=8, targets=["q_proj", "v_proj"]), seed=0)
    layers = tuner_layers(model.hf)
    assert layers
    lm = {id(m) for m in model.parts()["lm"].modules()}
    assert all(id(m) in lm for m in layers.values())
    vision = model.parts()["vision"]
    assert not tuner_layers(vision) and not tuner_layers(model.parts()["connector"])


@pytest.mark.parametrize("family", FAMILIES)
def test_saved_checkpoint_loads_with_transformers(family: str, data: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    model, proc = tiny(family)
    add_adapters(model, "lm", AdapterConfig(r=4, alpha=8, targets=["q_proj", "v_proj"]), seed=0)
    for _, layer in tuner_layers(model.hf).items():  # non-zero adapters, so merging changes the weights
        torch.nn.init.normal_(layer.lora_B["default"].weight, std=0.05)
    batch = collate([proc(records(data)[0], data)], proc.pad_token_id)
    model.eval()
    with torch.no_grad():
        expected = model(**model_inputs(batch)).logits
    model.save_pretrained(tmp_path / "merged", processor=proc, merge_lora=True)
    assert model.adapters  # merging for the export leaves the training model as it was
    hf = AutoModelForImageTextToText.from_pretrained(tmp_path / "merged", local_files_only=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            native_logits(type("M", (), {"hf": hf, "family": family}), batch), expected
        )

    model.save_pretrained(tmp_path / "lora", processor=proc)
    from peft import PeftModel

    base = AutoModelForImageTextToText.from_pretrained(tmp_path / "lora", local_files_only=True)
    peft_model = PeftModel.from_pretrained(base, tmp_path / "lora" / "peft").eval()
    with torch.no_grad():
        got = native_logits(type("M", (), {"hf": peft_model, "family": family}), batch)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)

    reloaded, proc2 = load_pretrained(tmp_path / "lora")
    assert reloaded.adapters == model.adapters and proc2.sampling == proc.sampling
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**model_inputs(batch)).logits, expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_left_padded_prompts_and_cached_steps_match_one_pass(family: str, data: Path) -> None:
    """Eval scores left-padded prompts in one batch and decodes with a KV cache: both must give what one
    full forward pass of the sample alone gives."""
    model, proc = tiny(family)
    model.eval()
    video, frames = records(data)
    fv, ff = proc(video, data, generation=True), proc(frames, data, generation=True)
    from sparrow.model.collate import pad_left, visual_inputs

    ids, mask, pos = pad_left([fv["input_ids"], ff["input_ids"]], proc.pad_token_id)
    vis = visual_inputs([fv, ff])
    with torch.no_grad():
        both = model(input_ids=ids, attention_mask=mask, position_ids=pos, **vis, logits_to_keep=1).logits
        for row, f in enumerate((fv, ff)):
            alone = model(
                **model_inputs(collate([{**f, "labels": f["input_ids"]}], proc.pad_token_id)),
                logits_to_keep=1,
            ).logits
            torch.testing.assert_close(both[row, -1], alone[0, -1], rtol=1e-4, atol=1e-4)
        # prompt with cache, then two tokens one at a time == one pass over prompt + tokens
        batch = collate([{**fv, "labels": fv["input_ids"]}], proc.pad_token_id)
        out = model(**model_inputs(batch), use_cache=True, logits_to_keep=1)
        extra = torch.tensor([[5, 9]])
        step = model(input_ids=extra[:, :1], cache=out["cache"], use_cache=True)
        step2 = model(input_ids=extra[:, 1:], cache=step["cache"], use_cache=True)
        full_ids = torch.cat([batch["input_ids"], extra], 1)
        full = model(
            input_ids=full_ids, pixel_values=batch["pixel_values"], group_sizes=batch["group_sizes"]
        ).logits
    torch.testing.assert_close(step.logits[0, -1], full[0, -3 + 1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(step2.logits[0, -1], full[0, -1], rtol=1e-4, atol=1e-4)


def test_packed_batches_are_refused_with_a_clear_message(data: Path) -> None:
    model, proc = tiny("qwen2_vl")
    feats = [proc(s, data) for s in records(data)]
    with pytest.raises(PackingError, match="packing: false"):
        model(**model_inputs(collate(feats, proc.pad_token_id, pack=True, max_length=512)))


def test_text_only_batch_still_reaches_every_part(data: Path) -> None:
    """A rank whose batch has no media must still give the vision parts a gradient (DDP stays in step)."""
    model, proc = tiny("llava_onevision")
    rec = json.loads((data / "text.jsonl").read_text().splitlines()[0])
    batch = collate([proc(Sample.from_dict(rec), data)], proc.pad_token_id)
    model.train()
    model(**model_inputs(batch)).logits.sum().backward()
    assert all(p.grad is not None for p in model.parts()["vision"].parameters())
