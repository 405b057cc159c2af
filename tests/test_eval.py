"""`sparrow eval` on a tiny random checkpoint and generated videos: the three conditions, batched letter
scoring, generation, cloze, one error path, resume, the command end to end, and the swap condition (also
on a tiny model trained to read the video)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_model
from media import read_index, write_video

from sparrow.eval.answers import parse_answer
from sparrow.eval.bench import read_bench
from sparrow.eval.conditions import build_sample, condition_sampling, swap_videos
from sparrow.eval.config import METHODS, EvalConfig
from sparrow.eval.evaluate import evaluate_rows, run_eval
from sparrow.eval.metrics import compute_metrics
from sparrow.eval.scoring import SCORERS, letter_candidates
from sparrow.mcq import format_mcq_prompt
from sparrow.model import load_pretrained
from sparrow.model.inference import generate, score_options

# (frames, fps) per video: 2 s, 4 s and 3 s long.
VIDEOS = {"v0": (20, 10), "v1": (40, 10), "v2": (15, 5)}
ROWS = [
    ("q0", "v0", ["red", "blue", "green"], "B", "colour"),
    ("q1", "v1", ["one", "two", "three", "four"], "A", "count"),
    ("q2", "v1", ["left", "right"], "B", "colour"),
    ("q3", "v2", ["cat", "dog", "bird", "fish"], "D", "count"),
    ("q4", "v2", ["up", "down", "still"], "B", "colour"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("evalworld")
    specs = {}
    (d / "videos").mkdir()
    for vid, (n, fps) in VIDEOS.items():
        specs[vid] = write_video(d / "videos" / f"{vid}.mp4", num_frames=n, fps=fps, width=64, height=64)
    with (d / "bench.jsonl").open("w") as f:
        for qid, vid, opts, ans, cat in ROWS:
            row = {
                "id": qid,
                "video": f"videos/{vid}.mp4",
                "question": f"Question {qid} about the video?",
                "options": opts,
                "answer": ans,
                "category": cat,
                "duration": specs[vid].duration,
            }
            f.write(json.dumps(row) + "\n")
    model, proc = tiny_model()
    model.save_pretrained(d / "ckpt", processor=proc)
    model, processor = load_pretrained(d / "ckpt")
    rows, bad = read_bench(d / "bench.jsonl")
    assert not bad
    return {"dir": d, "specs": specs, "model": model, "processor": processor, "rows": rows}


# ---------------------------------------------------------------------------------------- conditions


def test_conditions_feed_different_inputs(world):
    """video: fps-sampled frames with timing text; frame: exactly the centre frame, no timing text;
    text: no pixels and no visual tokens. The question is phrased identically in all three."""
    proc, root = world["processor"], world["dir"]
    row = world["rows"][1]  # v1: 40 frames at 10 fps
    spec = world["specs"]["v1"]
    base = proc.sampling
    decoded = {}
    for cond in ("video", "frame", "text"):
        sample = build_sample(row, cond)
        feats = proc(sample, root, sampling=condition_sampling(base, cond), generation=True)
        decoded[cond] = (feats, proc.tokenizer.decode(feats["input_ids"]))
        assert format_mcq_prompt(row.question, row.options) in decoded[cond][1]

    vfeats, vtext = decoded["video"]
    block = proc.load_media(build_sample(row, "video").media[0], root, condition_sampling(base, "video"))
    assert [read_index(f) for f in block.frames] == [spec.frame_at(t) for t in (0.0, 1.0, 2.0, 3.0)]
    assert vfeats["num_frames"] == 4 and "The video lasts" in vtext and "clip from" in vtext

    ffeats, ftext = decoded["frame"]
    fblock = proc.load_media(build_sample(row, "frame").media[0], root, condition_sampling(base, "frame"))
    assert ffeats["num_frames"] == 1 and len(fblock.frames) == 1
    assert read_index(fblock.frames[0]) == spec.frame_at(spec.duration / 2) == 20
    assert "lasts" not in ftext and "clip from" not in ftext

    tfeats, ttext = decoded["text"]
    assert tfeats["pixel_values"] is None and tfeats["num_frames"] == 0
    assert not (tfeats["input_ids"] == proc.visual_token_id).any()
    assert "<video>" not in ttext and "lasts" not in ttext

    # And the model's answer scores differ between what it was shown.
    scores = {}
    for cond in ("video", "frame", "text"):
        (res,) = list(evaluate_rows(world["model"], proc, [row], root, EvalConfig(condition=cond)))
        scores[cond] = list(res[0]["scores"].values())
    assert not np.allclose(scores["video"], scores["text"], atol=1e-6)
    assert not np.allclose(scores["video"], scores["frame"], atol=1e-6)


def test_batched_letter_scores_equal_the_reference_scorer(world):
    """One left-padded forward per batch gives the same letter log-probs as score_options row by row."""
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    batches = list(evaluate_rows(model, proc, rows, root, EvalConfig(condition="video", batch_size=5)))
    assert len(batches) == 1
    for row, pred in zip(rows, batches[0], strict=True):
        cands = letter_candidates(proc.tokenizer, row.options)
        ref = score_options(model, proc, build_sample(row, "video"), cands, root, sampling=proc.sampling)
        got = [pred["scores"][c] for c in "ABCD"[: len(row.options)]]
        assert np.allclose(got, ref, atol=2e-4), (row.id, got, ref)
        assert pred["prediction"] == "ABCD"[int(np.argmax(ref))]
        assert pred["correct"] == (pred["prediction"] == row.answer)


def _biased_head(model, token_id: int, bias: float = 1e4):
    """The tiny LM with a final bias toward one token: its answers are then known in advance."""
    lm = model.lm
    old = lm.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    head.weight = old.weight
    with torch.no_grad():
        head.bias.zero_()
        head.bias[token_id] = bias
    lm.lm_head = head
    return old


def test_known_answers_loglik_and_generate(world):
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    tok = proc.tokenizer
    b_id = tok("B", add_special_tokens=False)["input_ids"]
    assert len(b_id) == 1
    old = _biased_head(model, b_id[0])
    try:
        preds = [
            p for batch in evaluate_rows(model, proc, rows, root, EvalConfig(batch_size=2)) for p in batch
        ]
    finally:
        model.lm.lm_head = old
    assert [p["prediction"] for p in preds] == ["B"] * 5
    # Answers are B, A, B, D, B: 3 of 5 right; colour (q0, q2, q4) all right, count (q1, q3) none.
    m = compute_metrics(preds, buckets=(2.5,), samples=200, seed=0)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["by_category"]["colour"]["accuracy"] == 1.0 and m["by_category"]["count"]["accuracy"] == 0.0
    # Durations 2 s (q0) < 2.5 s <= 3, 4 s.
    assert m["by_duration"]["<2.5s"]["n"] == 1 and m["by_duration"][">=2.5s"]["n"] == 4
    assert m["by_duration"]["<2.5s"]["accuracy"] == 1.0 and m["by_duration"][">=2.5s"]["accuracy"] == 0.5

    # Generation: a head biased to end the turn at once gives empty replies: nothing parsed, all wrong.
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    old = _biased_head(model, eos)
    try:
        gen = [
            p
            for batch in evaluate_rows(model, proc, rows[:2], root, EvalConfig(method="generate"))
            for p in batch
        ]
    finally:
        model.lm.lm_head = old
    assert [(p["response"], p["prediction"], p["correct"]) for p in gen] == [("", None, False)] * 2
    assert compute_metrics(gen, samples=10)["unanswered"] == 2


def test_generate_predictions_are_parsed_replies(world):
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    cfg = EvalConfig(condition="text", method="generate", max_new_tokens=6)
    preds = [p for batch in evaluate_rows(model, proc, rows[:3], root, cfg) for p in batch]
    for row, p in zip(rows[:3], preds, strict=True):
        reply = generate(model, proc, build_sample(row, "text"), root, max_new_tokens=6)
        assert p["response"] == reply
        assert p["prediction"] == parse_answer(reply, row.options)
        assert p["scores"] is None


# -------------------------------------------------------------------------------------------- resume


def test_resume_after_interruption_gives_the_same_predictions(world, tmp_path):
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    cfg = EvalConfig(condition="frame", batch_size=2)
    full, _ = run_eval(model, proc, rows, root, cfg, tmp_path / "a" / "results.jsonl")

    calls = []

    def stop_after_first(n):
        calls.append(n)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_eval(model, proc, rows, root, cfg, tmp_path / "b" / "results.jsonl", on_batch=stop_after_first)
    assert len((tmp_path / "b" / "results.jsonl").read_text().splitlines()) == 2
    seen = []
    resumed, errors = run_eval(
        model, proc, rows, root, cfg, tmp_path / "b" / "results.jsonl", on_batch=seen.append
    )
    assert seen == [2, 2, 1]  # 2 loaded from the first run, then the remaining 3 in batches of 2
    assert resumed == full and not errors


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_end_to_end_with_bad_rows_and_rerun(world, tmp_path, capsys):
    from sparrow.cli import main

    d = world["dir"]
    bench = d / "bench_cli.jsonl"
    lines = (d / "bench.jsonl").read_text().splitlines()
    missing = json.loads(lines[0]) | {"id": "gone", "video": "videos/missing.mp4"}
    bench.write_text("\n".join([*lines, json.dumps(missing), '{"id": "broken"']) + "\n")
    out = tmp_path / "run"
    args = ["eval", "--model", str(d / "ckpt"), "--bench", str(bench), "--out", str(out)]
    args += ["--condition", "frame", "--batch-size", "3", "--name", "tiny", "--bootstrap", "200"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["q0", "q1", "q2", "q3", "q4"]
    assert all(set(p) >= {"id", "prediction", "correct", "scores", "category", "duration"} for p in preds)
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert {e.get("id") for e in errors} == {None, "gone"} and len(errors) == 2
    assert any("missing.mp4" in e["reason" if "reason" in e else "error"] for e in errors)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 5 and metrics["errors"] == 2 and metrics["condition"] == "frame"
    assert metrics["accuracy"] == pytest.approx(np.mean([p["correct"] for p in preds]))
    run = json.loads((out / "run.json").read_text())
    assert run["name"] == "tiny" and run["bench"] == "bench_cli" and run["sampling"]["num_frames"] == 1
    first = (out / "predictions.jsonl").read_bytes()

    with pytest.raises(SystemExit) as e:  # a re-run resumes: everything is loaded, same output
        main(args)
    assert e.value.code == 0
    assert (out / "predictions.jsonl").read_bytes() == first

    with pytest.raises(SystemExit) as e:  # other settings into the same folder are refused
        main([*args[:-6], "--condition", "text"])
    assert e.value.code == 2
    assert "different settings" in capsys.readouterr().err


def test_cloze_scores_option_texts_after_the_bare_question(world):
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    sample = build_sample(rows[0], "video", cloze=True)
    user = sample.messages[0]["content"]
    assert user == "<video>\n" + rows[0].question and "A. red" not in user
    # Scores equal the reference scorer on the option texts themselves.
    preds = [p for b in evaluate_rows(model, proc, rows, root, EvalConfig(method="cloze")) for p in b]
    for row, pred in zip(rows, preds, strict=True):
        ref = score_options(model, proc, build_sample(row, "video", cloze=True), list(row.options), root)
        assert list(pred["scores"].values()) == pytest.approx(ref, abs=1e-5)
        assert pred["prediction"] == "ABCD"[int(np.argmax(ref))]
    # A head biased toward "red" (one token) picks the option "red" wherever it stands.
    tok = proc.tokenizer
    red = tok("red", add_special_tokens=False)["input_ids"]
    assert len(red) == 1
    row = replace(rows[0], options=["blue", "green", "red"], answer_index=1)
    old = _biased_head(model, red[0])
    try:
        pred = next(iter(evaluate_rows(model, proc, [row], root, EvalConfig(method="cloze"))))[0]
    finally:
        model.lm.lm_head = old
    assert pred["prediction"] == "C" and pred["correct"] is False


def test_every_method_shares_one_error_path(world):
    """A row whose video is missing and a row without a video (frame condition) fail the same way under
    every scoring method, and the good rows of the same batch are still answered."""
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    assert set(SCORERS) == set(METHODS)
    missing = replace(rows[0], id="gone", video="videos/missing.mp4")
    novideo = replace(rows[1], id="novideo", video=None)
    batch = [rows[0], missing, novideo, rows[2]]
    errors = {}
    for method in METHODS:
        cfg = EvalConfig(condition="frame", method=method, batch_size=4, max_new_tokens=2)
        (results,) = list(evaluate_rows(model, proc, batch, root, cfg))
        assert [r["id"] for r in results] == ["q0", "gone", "novideo", "q2"]
        assert "prediction" in results[0] and "prediction" in results[3]
        assert set(results[1]) == set(results[2]) == {"id", "error"}
        errors[method] = (results[1]["error"], results[2]["error"])
    assert len(set(errors.values())) == 1, errors
    gone, novid = errors["loglik"]
    assert "missing.mp4" in gone and "\n" not in gone and "no 'video' for condition 'frame'" in novid


def test_cloze_norm_divides_by_option_tokens(world):
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    tok = proc.tokenizer
    summed = next(iter(evaluate_rows(model, proc, rows, root, EvalConfig(method="cloze", batch_size=5))))
    normed = next(iter(evaluate_rows(model, proc, rows, root, EvalConfig(method="cloze_norm", batch_size=5))))
    for row, s, n in zip(rows, summed, normed, strict=True):
        lengths = [len(tok(o, add_special_tokens=False)["input_ids"]) for o in row.options]
        want = [v / k for v, k in zip(s["scores"].values(), lengths, strict=True)]
        assert list(n["scores"].values()) == pytest.approx(want)
        assert n["prediction"] == "ABCD"[int(np.argmax(want))]


# ------------------------------------------------------------------------------------------ swap


def test_swap_shows_each_question_another_video(world):
    """Under swap a row is scored on the pixels of the video swap_videos gives it: exactly the scores the
    video condition gives the row with that video, and not its own video's scores."""
    model, proc, root, rows = world["model"], world["processor"], world["dir"], world["rows"]
    swap = swap_videos(rows, 0)
    cfg = EvalConfig(condition="swap", method="cloze", swap_videos=swap, batch_size=2)
    got = [p for batch in evaluate_rows(model, proc, rows, root, cfg) for p in batch]
    own = [
        p for batch in evaluate_rows(model, proc, rows, root, replace(cfg, condition="video")) for p in batch
    ]
    moved = [replace(r, video=swap[r.id]) for r in rows]
    ref = [
        p for batch in evaluate_rows(model, proc, moved, root, replace(cfg, condition="video")) for p in batch
    ]
    for row, g, o, r in zip(rows, got, own, ref, strict=True):
        assert g["video_shown"] == swap[row.id] != row.video
        assert g["scores"] == pytest.approx(r["scores"], abs=1e-5)
        assert not np.allclose(list(g["scores"].values()), list(o["scores"].values()), atol=1e-6)


def test_cli_swap_writes_the_video_reliance(world, tmp_path, capsys):
    from sparrow.cli import main

    d = world["dir"]
    out = tmp_path / "run"
    args = ["eval", "--model", str(d / "ckpt"), "--bench", str(d / "bench.jsonl"), "--out", str(out)]
    args += ["--conditions", "video,swap", "--method", "cloze", "--bootstrap", "300", "--swap-seed", "2"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    printed = capsys.readouterr().out
    assert "video − swap (video reliance)" in printed
    preds = {
        c: {p["id"]: p for p in map(json.loads, (out / c / "predictions.jsonl").open())}
        for c in ("video", "swap")
    }
    swap = swap_videos(world["rows"], 2)
    assert {i: p["video_shown"] for i, p in preds["swap"].items()} == swap
    m = {c: json.loads((out / c / "metrics.json").read_text()) for c in ("video", "swap")}
    rel = m["swap"]["video_reliance"]
    assert rel["n"] == 5 and rel["diff"] == pytest.approx(m["video"]["accuracy"] - m["swap"]["accuracy"])
    diffs = [preds["video"][i]["correct"] - preds["swap"][i]["correct"] for i in swap]
    assert rel["diff"] == pytest.approx(np.mean(diffs))
    assert rel["ci95"][0] <= rel["diff"] <= rel["ci95"][1]
    assert set(rel["by_category"]) == {"colour", "count"} and "video_reliance" not in m["video"]
    run = json.loads((out / "swap" / "run.json").read_text())
    assert run["swap"] == {"seed": 2, "questions_shown_their_own_video_file": 0}
    with pytest.raises(SystemExit) as e:  # a bad condition name is a usage error
        main([*args[:-6], "--conditions", "video,swapped"])
    assert e.value.code == 2


def _solid_video(path, rgb, frames: int = 8) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=4)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), rgb, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_a_trained_model_that_reads_the_video_loses_accuracy_under_swap(tmp_path):
    """The tiny model trained (40 steps, real trainer) to name the colour of solid-colour videos: right on
    its own test videos, near chance when each question is shown another test video."""
    import yaml

    from sparrow.eval.config import EvalOptions
    from sparrow.eval.runner import evaluate_checkpoint
    from sparrow.train.options import RunOptions
    from sparrow.train.recipe import Recipe
    from sparrow.train.trainer import train

    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
    root = tmp_path / "data"
    (root / "videos").mkdir(parents=True)
    train_rows, bench = [], []
    for k, (name, rgb) in enumerate(colours.items()):
        for i in range(10):
            split = "tr" if i < 6 else "te"
            _solid_video(root / f"videos/{split}-{name}-{i}.mp4", rgb)
            video = f"videos/{split}-{name}-{i}.mp4"
            if split == "tr":
                msgs = [{"role": "user", "content": "<video>\nWhat colour is the video?"}]
                msgs.append({"role": "assistant", "content": name})
                train_rows.append(
                    {"id": f"tr-{name}-{i}", "messages": msgs, "media": [{"type": "video", "path": video}]}
                )
            else:
                q = {"id": f"te-{name}-{i}", "video": video, "question": "What colour is the video?"}
                bench.append(q | {"options": list(colours), "answer": "ABC"[k], "category": "colour"})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_rows))
    (root / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bench))
    model = yaml.safe_load((REPO / "configs" / "tiny" / "model.yaml").read_text())
    model["sampling"].update(max_frames=2, image_size=32)
    stage = {"name": "see", "trainable": ["connector", "lm"], "lr": {"connector": 3e-3, "lm": 3e-3}}
    stage |= {"mixture": {"sources": [{"path": "train.jsonl"}], "seed": 0}, "steps": 40, "batch_size": 8}
    stage |= {"micro_batch_size": 8, "seq_length": 256, "warmup_ratio": 0.0}
    recipe = Recipe.from_dict({"model": model, "seed": 0, "stages": [stage], "num_workers": 0})
    train(recipe, RunOptions(out=tmp_path / "run", data_root=root, threads=1))
    options = EvalOptions(conditions=("video", "swap"), method="cloze", bootstrap=500, threads=1)
    video, swap = evaluate_checkpoint(
        tmp_path / "run" / "final", root / "bench.jsonl", tmp_path / "ev", options
    )
    assert video.metrics["accuracy"] >= 0.9
    rel = swap.metrics["video_reliance"]
    assert rel["diff"] >= 0.4 and rel["ci95"][0] > 0.2, rel
    # Each swapped question saw another file, of the same colour only by chance.
    preds = [json.loads(x) for x in (tmp_path / "ev" / "swap" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 12 and all(p["video_shown"] != f"videos/{p['id']}.mp4" for p in preds)
