"""What a training step computes and reports: logits only at supervised positions (same loss and
gradients as the full logits), the visual / other loss split, and the precision ``auto`` picks."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model
from PIL import Image
from train_data import make_data, model_config, stage

from sparrow.model import collate
from sparrow.model.inference import score_options
from sparrow.model.visual_terms import VisualTerms
from sparrow.records import Media, Sample
from sparrow.train import distributed as D
from sparrow.train.options import RunOptions
from sparrow.train.recipe import Recipe, RecipeError
from sparrow.train.rundir import read_metrics
from sparrow.train.step import StepSetup, train_step
from sparrow.train.trainer import cpu_bf16_flags, resolve_precision, train

pytestmark = pytest.mark.usefixtures("one_thread")

ANSWERS = ["B. an orange circle", "2 squares and the word BIRD", "It moves to the left."]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(root / "0.png")
    model, proc = tiny_model()
    proc.visual_terms = VisualTerms.world()
    samples = [
        Sample(
            id=f"s{i}",
            messages=[
                {"role": "user", "content": "<video>\nWhat do you see?"},
                {"role": "assistant", "content": a},
            ],
            media=[Media(type="frames", paths=["0.png", "0.png"])],
            source="world",
        )
        for i, a in enumerate(ANSWERS)
    ]
    feats = [proc(s, root) for s in samples]
    return model, proc, feats, samples, root


def _step(model, batch, use_bf16=False) -> dict:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD([{"params": params, "part": "all"}], lr=0.0)
    s = StepSetup(model, model, F.cross_entropy, opt, 1, None, D.DistInfo(), use_bf16)
    s.loss_fn = lambda logits, target: F.cross_entropy(logits.float(), target, reduction="sum")
    return train_step(s, iter([{"batch": dict(batch), "samples": 3, "errors": []}]), "test")


def _reference_nll(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per supervised token: NLL from the full (B, L, V) logits, and whether it is visual."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "seq_index", "visual_mask")}
    with torch.no_grad():
        logits = model(**inputs).logits[:, :-1]
    target = batch["labels"][:, 1:]
    sel = target != -100
    nll = F.cross_entropy(logits[sel].double(), target[sel], reduction="none")
    return nll, batch["visual_mask"][:, 1:][sel]


@pytest.mark.parametrize("pack", [False, True])
def test_loss_split_matches_the_full_logits(setup, pack):
    model, proc, feats, _, _ = setup
    batch = collate(feats, proc.pad_token_id, pack=pack)
    row = _step(model, batch)
    nll, vis = _reference_nll(model, batch)
    # Visual tokens by hand: " orange", " circle", "2", " squares", " BIRD".
    tok = proc.tokenizer
    words = (" orange", " circle", "2", " squares", " BIRD")
    assert row["visual_tokens"] == int(vis.sum()) == sum(len(tok(w)["input_ids"]) for w in words)
    assert row["loss"] == pytest.approx(float(nll.mean()), rel=1e-5)
    assert row["loss_visual"] == pytest.approx(float(nll[vis].mean()), rel=1e-5)
    assert row["loss_other"] == pytest.approx(float(nll[~vis].mean()), rel=1e-5)
    n_vis, n = row["visual_tokens"], row["supervised_tokens"]
    weighted = (row["loss_visual"] * n_vis + row["loss_other"] * (n - n_vis)) / n
    assert weighted == pytest.approx(row["loss"], rel=1e-6)


def test_loss_split_by_hand_on_uniform_logits(setup):
    """A zeroed final norm makes every logit 0: each token costs exactly log V, visual or not."""
    model, proc, feats, _, _ = setup
    flat = copy.deepcopy(model)
    with torch.no_grad():
        flat.lm.model.norm.weight.zero_()
    row = _step(flat, collate(feats, proc.pad_token_id))
    log_v = math.log(flat.lm.config.vocab_size)
    assert row["loss_visual"] == pytest.approx(log_v, rel=1e-6)
    assert row["loss_other"] == pytest.approx(log_v, rel=1e-6)
    # A batch without the mask (no visual terms) has no split in its row.
    no_mask = {k: v for k, v in collate(feats, proc.pad_token_id).items() if k != "visual_mask"}
    assert "loss_visual" not in _step(model, no_mask)


def test_logits_at_supervised_positions_give_the_same_loss_and_gradients(setup):
    model, proc, feats, _, _ = setup
    batch = collate(feats, proc.pad_token_id, pack=True)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "seq_index", "visual_mask")}
    target = batch["labels"][:, 1:]
    sel = target != -100
    at = F.pad(sel, (0, 1), value=False)
    grads = []
    for only_supervised in (False, True):
        m = copy.deepcopy(model)
        if only_supervised:
            logits = m(**inputs, logits_at=at).logits
        else:
            logits = m(**inputs).logits[:, :-1][sel]
        assert logits.shape == (int(sel.sum()), m.lm.config.vocab_size)
        loss = F.cross_entropy(logits, target[sel])
        loss.backward()
        grads.append((float(loss.detach()), [p.grad.clone() for p in m.parameters() if p.grad is not None]))
    (full_loss, full_grads), (part_loss, part_grads) = grads
    assert part_loss == pytest.approx(full_loss, rel=1e-6)
    assert len(full_grads) == len(part_grads)
    for a, b in zip(full_grads, part_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_bf16_autocast_step_is_close_to_fp32(setup):
    model, proc, feats, _, _ = setup
    batch = collate(feats, proc.pad_token_id)
    fp32, bf16 = _step(model, batch), _step(model, batch, use_bf16=True)
    assert bf16["loss"] == pytest.approx(fp32["loss"], rel=2e-2)
    assert bf16["loss_visual"] == pytest.approx(fp32["loss_visual"], rel=2e-2)


def test_score_options_equal_the_full_sequence_log_probs(setup):
    model, proc, _, samples, root = setup
    sample = samples[0]
    candidates = ["an orange circle", "a red square", "yes"]
    scores = score_options(model, proc, sample, candidates, root)
    for cand, score in zip(candidates, scores, strict=True):
        full = Sample(sample.id, [sample.messages[0], {"role": "assistant", "content": cand}], sample.media)
        f = proc(full, root)
        with torch.no_grad():
            logits = model(
                f["input_ids"][None], pixel_values=f["pixel_values"], group_sizes=f["group_sizes"]
            ).logits[0, :-1]
        target = f["labels"][1:]
        logp = F.log_softmax(logits.double(), -1).gather(-1, target.clamp(min=0)[:, None])[:, 0]
        n = len(proc.tokenizer(cand, add_special_tokens=False)["input_ids"])
        expected = float(logp[target != -100][:n].sum())  # the candidate's tokens, not the end of turn
        assert score == pytest.approx(expected, abs=1e-4)


def test_precision_auto(tmp_path):
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    cpu = torch.device("cpu")
    assert cpu_bf16_flags(amx) == ["amx_bf16", "avx512_bf16"] and cpu_bf16_flags(old) == []
    assert cpu_bf16_flags(tmp_path / "missing") == []
    assert resolve_precision("auto", cpu, amx) == {
        "autocast": "bf16",
        "reason": "CPU has amx_bf16 and avx512_bf16",
    }
    assert resolve_precision("auto", cpu, old)["autocast"] == "fp32"
    assert resolve_precision("fp32", cpu, amx)["autocast"] == "fp32"
    assert resolve_precision("bf16", cpu, old)["autocast"] == "bf16"
    # A small LM trains faster in fp32 even there (the casts cost more than the matmuls save).
    small = resolve_precision("auto", cpu, amx, lm_hidden=128)
    assert small["autocast"] == "fp32" and "small" in small["reason"]
    assert resolve_precision("auto", cpu, amx, lm_hidden=576)["autocast"] == "bf16"


def test_a_run_logs_the_split_and_its_precision(tmp_path):
    data = make_data(tmp_path / "data", n_text=4, n_frames=6)
    sources = [{"path": "frames.jsonl"}, {"path": "text.jsonl"}]

    def recipe(terms):
        return Recipe.from_dict(
            {
                "model": model_config(),
                "stages": [stage("s", ["connector", "lm"], 2, sources)],
                "num_workers": 0,
                "visual_terms": terms,
            }
        )

    summary = train(
        recipe(["red", "green", "blue"]), RunOptions(out=tmp_path / "run", data_root=data, threads=1)
    )
    assert summary["precision"]["autocast"] in ("bf16", "fp32") and summary["precision"]["reason"]
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 2 and all(r["visual_tokens"] > 0 and r["loss_visual"] > 0 for r in rows)
    # The default (auto) marks world records only: these are not, so no token is visual; none: no split.
    train(recipe("auto"), RunOptions(out=tmp_path / "auto", data_root=data, max_steps=1, threads=1))
    auto = read_metrics(tmp_path / "auto" / "metrics.jsonl")[0]
    assert auto["visual_tokens"] == 0 and auto["loss_visual"] is None
    assert auto["loss_other"] == pytest.approx(auto["loss"], rel=1e-6)
    train(recipe("none"), RunOptions(out=tmp_path / "none", data_root=data, max_steps=1, threads=1))
    assert "loss_visual" not in read_metrics(tmp_path / "none" / "metrics.jsonl")[0]
    with pytest.raises(RecipeError, match="bad pattern"):
        recipe({"patterns": ["("]})


def test_packed_rows_per_sample_match_the_block_mask(setup):
    """On a CPU a packed batch's LM pass runs each sample in its own row (no attention over the other
    samples' positions): the same loss and gradients as the block-diagonal mask."""
    model, proc, feats, _, _ = setup
    batch = collate(feats, proc.pad_token_id, pack=True, max_length=512)
    assert batch["input_ids"].shape[0] == 1 and batch["attention_mask"].dim() == 4
    results = []
    for mode in ("mask", "per_sample"):
        m = copy.deepcopy(model)
        m.packed_attention = mode
        results.append(_step(m, batch))
    a, b = results
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    assert b["loss_visual"] == pytest.approx(a["loss_visual"], rel=1e-5)
