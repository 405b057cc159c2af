"""The lmms-eval plugin and task folder.

In the core venv (no lmms-eval): request/messages conversion, the task functions, and the plugin's
``loglikelihood`` / ``generate_until`` giving exactly what ``sparrow eval`` computes for the same rows.
In ``.venv-eval`` (built by ``scripts/make_eval_venv.sh``): lmms-eval's own CLI runs the ``sparrow``
model on a tiny local task end to end, and its sample logs feed ``sparrow curate``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from media import read_index, write_video
from PIL import Image

from sparrow.eval.bench import read_bench
from sparrow.eval.conditions import build_sample as mcq_sample
from sparrow.eval.conditions import swap_videos
from sparrow.eval.config import EvalConfig
from sparrow.eval.evaluate import evaluate_rows
from sparrow.eval.lmms_plugin import SparrowLMM, SparrowSimpleLMM, build_sample, messages_to_parts
from sparrow.eval.lmms_tasks import write_task
from sparrow.mcq import format_mcq_prompt
from sparrow.model import Processor, VideoLLM, VideoLLMConfig
from sparrow.model.inference import generate

ROOT = Path(__file__).resolve().parents[1]
EVAL_VENV = ROOT / ".venv-eval"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("lmms")
    (d / "videos").mkdir()
    specs = {
        "a": write_video(d / "videos" / "a.mp4", num_frames=30, fps=10, width=64, height=64),
        "b": write_video(d / "videos" / "b.mp4", num_frames=20, fps=5, width=64, height=64),
    }
    rows = [
        ("r0", "a", ["red", "blue", "green"], "B", "perception"),
        ("r1", "b", ["one", "two", "three", "four"], "D", "counting"),
        ("r2", "a", ["before", "after"], "A", "temporal_order"),
    ]
    with (d / "bench_test.jsonl").open("w") as f:
        for rid, vid, opts, ans, cat in rows:
            row = {"id": rid, "video": f"videos/{vid}.mp4", "question": f"What about {rid}?", "options": opts}
            row |= {"answer": ans, "category": cat, "duration": specs[vid].duration}
            f.write(json.dumps(row) + "\n")
    cfg = VideoLLMConfig.from_yaml(ROOT / "configs" / "tiny" / "model.yaml")
    torch.manual_seed(1)
    proc = Processor(cfg)
    model = VideoLLM(cfg, tokenizer=proc.tokenizer)
    # Freshly initialised, the tiny LM replies "\n" to everything; larger weights make its replies varied
    # text, so comparing replies across the two environments means something.
    with torch.no_grad():
        for p in model.lm.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3)
    model.save_pretrained(d / "ckpt", processor=proc)
    files = write_task(d / "bench_test.jsonl", d / "tasks")
    return {"dir": d, "specs": specs, "files": files, "rows": read_bench(d / "bench_test.jsonl")[0]}


def _utils(setup):
    path = setup["dir"] / "tasks" / "sparrow_world" / "utils.py"
    spec = importlib.util.spec_from_file_location("sparrow_world_utils_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------------- core venv only


def test_task_folder_and_its_functions(setup):
    d = setup["dir"]
    names = sorted(p.name for p in setup["files"])
    assert names == [
        "_default_template_yaml",
        "sparrow_world.yaml",
        "sparrow_world_frame.yaml",
        "sparrow_world_mc.yaml",
        "sparrow_world_swap.yaml",
        "sparrow_world_text.yaml",
        "swap_videos.json",
        "utils.py",
    ]
    template = (d / "tasks" / "sparrow_world" / "_default_template_yaml").read_text()
    assert f'test: "{(d / "bench_test.jsonl").resolve()}"' in template
    assert (
        f'bench_root: "{d.resolve()}"'
        in (d / "tasks" / "sparrow_world" / "sparrow_world_text.yaml").read_text()
    )

    u = _utils(setup)
    doc = json.loads((d / "bench_test.jsonl").read_text().splitlines()[0])
    kw = {"bench_root": str(d), "condition": "video"}
    assert u.doc_to_text(doc, kw) == format_mcq_prompt(doc["question"], doc["options"])
    assert u.doc_to_visual(doc, kw) == [str((d / "videos" / "a.mp4").resolve())]
    assert u.doc_to_visual(doc, {**kw, "condition": "text"}) == []
    (png,) = u.doc_to_visual(doc, {**kw, "condition": "frame"})
    with Image.open(png) as im:
        assert read_index(np.asarray(im.convert("RGB"))) == setup["specs"]["a"].frame_at(1.5) == 15
    with pytest.raises(ValueError, match="leaves the benchmark folder"):
        u.doc_to_visual({**doc, "video": "../../etc/passwd"}, kw)
    # swap: the video `sparrow eval` pairs the row with (another file: r0 is on a.mp4, so b.mp4)
    swap = swap_videos(setup["rows"], 0)
    assert json.loads((d / "tasks" / "sparrow_world" / "swap_videos.json").read_text()) == swap
    assert u.doc_to_visual(doc, {**kw, "condition": "swap"}) == [str((d / swap["r0"]).resolve())]
    assert swap["r0"] == "videos/b.mp4"
    assert u.doc_to_choice(doc) == ["A", "B", "C"] and u.doc_to_answer_index(doc) == 1
    gen = u.process_results(doc, ["The answer is B."])["sparrow_acc"]
    assert (gen["id"], gen["pred"], gen["correct"], gen["category"]) == ("r0", "B", 1, "perception")
    # multiple choice: tuples, or their string form as lmms-eval 0.7.3 hands them over
    mc = u.process_results(doc, ["(-2.0, False)", "(-3.5, False)", "(-0.1, True)"])["sparrow_acc"]
    assert (mc["pred"], mc["correct"]) == ("C", 0)
    assert (
        u.process_results(doc, [[(-1.0, False)], [(-0.5, True)], [(-2.0, False)]])["sparrow_acc"]["correct"]
        == 1
    )
    assert u.aggregate_accuracy([{"correct": 1}, {"correct": 0}, {"correct": 1}, {"correct": 1}]) == 0.75


def test_video_reliance_from_lmms_sample_logs(tmp_path):
    """Sample logs of a task and its _swap variant pair into video − swap per question (the figure
    `sparrow eval` writes), overall and per category."""
    from sparrow.eval.results import condition_differences, load_results

    def log(task, correct):
        lines = [
            {
                "doc_id": i,
                "target": "A",
                "sparrow_acc": {"id": f"q{i}", "category": f"c{i % 2}", "correct": c},
            }
            for i, c in enumerate(correct)
        ]
        path = tmp_path / "m7" / f"20250101_samples_{task}.jsonl"
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))

    log("sparrow_world", [1, 1, 1, 0, 1, 1, 0, 1])
    log("sparrow_world_swap", [0, 1, 0, 0, 1, 0, 0, 0])
    out = condition_differences(load_results(str(tmp_path)), "swap", samples=500)
    rel = out["m7@sparrow_world"]
    assert rel["n"] == 8 and rel["diff"] == pytest.approx((6 - 2) / 8)
    assert rel["by_category"]["c0"]["diff"] == pytest.approx((3 - 1) / 4)
    assert rel["ci95"][0] <= rel["diff"] <= rel["ci95"][1]
    assert condition_differences(load_results(str(tmp_path)), "text") == {}  # no text log: nothing paired


def test_messages_and_visuals_to_a_sample(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "i").mkdir()
    vid, img = tmp_path / "v" / "x.mp4", tmp_path / "i" / "y.png"
    msgs = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "video", "url": str(vid)},
                {"type": "image", "url": str(img)},
                {"type": "text", "text": "<image>What is shown?"},
            ],
        },
    ]
    text, visuals, system = messages_to_parts(msgs)
    assert (text, system) == ("<image>What is shown?", "Be brief.")
    from sparrow.eval.lmms_plugin import _Visuals

    items = _Visuals().to_items(
        [*visuals, {"type": "video", "url": {"path": str(vid), "video_start": 1, "video_end": 2}}]
    )
    sample, root = build_sample(text, items)
    assert root == str(tmp_path)
    assert sample.messages[0]["content"] == "<video>\n<image>\n<video>\nWhat is shown?"
    assert [(m.type, m.path, m.start, m.end) for m in sample.media] == [
        ("video", "v/x.mp4", None, None),
        ("image", "i/y.png", None, None),
        ("video", "v/x.mp4", 1.0, 2.0),
    ]
    pil = _Visuals()
    ((kind, path, _, _),) = pil.to_items([Image.new("RGB", (8, 8), (255, 0, 0))])
    assert kind == "image" and Image.open(path).getpixel((0, 0)) == (255, 0, 0)
    pil.close()


@dataclass
class Req:
    """The shape lmms-eval hands a model: an object whose ``args`` is the request tuple."""

    args: tuple


def test_plugin_scores_and_replies_equal_sparrow_eval(setup):
    """The same checkpoint and rows: the plugin's log-likelihoods equal `sparrow eval`'s letter scores
    and its replies equal `generate` on the sample `sparrow eval` builds."""
    d, rows = setup["dir"], setup["rows"]
    u = _utils(setup)
    kw = {"bench_root": str(d), "condition": "video"}
    docs = [json.loads(x) for x in (d / "bench_test.jsonl").read_text().splitlines()]

    simple = SparrowSimpleLMM(pretrained=str(d / "ckpt"), device="cpu")
    simple.task_dict = {"sparrow_world_mc": {"test": docs}}
    reqs = [
        Req(
            (
                u.doc_to_text(doc, kw),
                letter,
                lambda doc: u.doc_to_visual(doc, kw),
                i,
                "sparrow_world_mc",
                "test",
            )
        )
        for i, doc in enumerate(docs)
        for letter in u.doc_to_choice(doc)
    ]
    got = simple.loglikelihood(reqs)
    ref = [
        p for b in evaluate_rows(simple.model, simple.processor, rows, d, EvalConfig(batch_size=3)) for p in b
    ]
    expected = [s for p in ref for s in p["scores"].values()]
    assert np.allclose([g[0] for g in got], expected, atol=2e-4)
    assert all(isinstance(g[1], bool) for g in got)

    chat = SparrowLMM(pretrained=str(d / "ckpt"), device="cpu", max_frames="4")
    assert chat.sampling.max_frames == 4 and chat.is_simple is False
    chat.task_dict = {"sparrow_world_text": {"test": docs}}

    def doc_to_messages(doc):
        return [{"role": "user", "content": [{"type": "text", "text": u.doc_to_text(doc, kw)}]}]

    gen_kwargs = {"max_new_tokens": 5, "until": ["\n\n"]}
    replies = chat.generate_until(
        [Req(("", doc_to_messages, gen_kwargs, i, "sparrow_world_text", "test")) for i in range(len(docs))]
    )
    for row, reply in zip(rows, replies, strict=True):
        want = generate(chat.model, chat.processor, mcq_sample(row, "text"), d, max_new_tokens=5)
        assert reply == want.split("\n\n")[0]
    with pytest.raises(ValueError, match="unknown sparrow model_args"):
        SparrowLMM(pretrained=str(d / "ckpt"), frames="8")


# ------------------------------------------------------------------------------ lmms-eval, end to end


@pytest.fixture(scope="module")
def eval_python():
    """.venv-eval's python, built by scripts/make_eval_venv.sh when missing (`make test` builds it
    first). Skips, saying why, only when the environment cannot be built."""
    py = EVAL_VENV / "bin" / "python"
    failed = EVAL_VENV / ".build-failed"
    if failed.is_file():  # `make test` tried already: say why instead of trying again
        pytest.skip(
            f".venv-eval could not be built: {failed.read_text().strip()} (remove .venv-eval to retry)"
        )
    if not (EVAL_VENV / ".eval-stamp").is_file():
        try:
            proc = subprocess.run(
                ["bash", str(ROOT / "scripts" / "make_eval_venv.sh")],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1500,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(".venv-eval could not be built: scripts/make_eval_venv.sh timed out")
        if proc.returncode != 0:
            why = (
                failed.read_text().strip() if failed.is_file() else (proc.stdout + proc.stderr).strip()[-300:]
            )
            pytest.skip(f".venv-eval could not be built: {why}")
    return py


def _env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {
        "HF_HOME": str(tmp / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env |= {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return env


_DRIVER = """
import json, sys
from lmms_eval.cli.dispatch import main as lmms_eval_cli  # what `lmms-eval` / `python -m lmms_eval` run

args = json.loads(sys.argv[1])
sys.argv = ["lmms-eval", *args]
try:
    lmms_eval_cli()
except SystemExit as e:
    if e.code:
        raise

# The multiple-choice variant through lmms-eval's evaluator with the simple model (what --force_simple
# selects), indexing only our task folder: a second CLI run would index the ~2000 bundled tasks again.
from lmms_eval.evaluator import simple_evaluate
from lmms_eval.tasks import TaskManager

tasks, ckpt = args[args.index("--include_path") + 1], args[args.index("--model_args") + 1].split(",")[0]
tm = TaskManager("WARNING", include_path=tasks, include_defaults=False, model_name="sparrow")
res = simple_evaluate(model="sparrow", model_args=ckpt + ",device=cpu", tasks=["sparrow_world_mc"],
                      task_manager=tm, force_simple=True, log_samples=True, batch_size=1)
rows = [[s["doc_id"], [str(r) for r in s["filtered_resps"]], s["sparrow_acc"]] for s in res["samples"]["sparrow_world_mc"]]
print("RESULT" + json.dumps(rows))
"""


@pytest.fixture(scope="module")
def lmms_run(setup, eval_python, tmp_path_factory):
    """One process in .venv-eval: lmms-eval's CLI with the chat model on the video / frame / text tasks,
    then the log-likelihood task with the simple model. Returns (log folder, multiple-choice samples)."""
    d = setup["dir"]
    tmp = tmp_path_factory.mktemp("lmms_run")
    out = tmp / "logs"
    args = ["--model", "sparrow", "--model_args", f"pretrained={d / 'ckpt'},device=cpu,max_new_tokens=6"]
    args += [
        "--tasks",
        "sparrow_world,sparrow_world_frame,sparrow_world_text,sparrow_world_swap",
        "--include_path",
        str(d / "tasks"),
    ]
    args += ["--output_path", str(out), "--log_samples", "--batch_size", "1"]
    proc = subprocess.run(
        [str(eval_python), "-c", _DRIVER, json.dumps(args)],
        cwd=tmp,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "torchvision" not in proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return out, sorted(json.loads(line[len("RESULT") :]))


@pytest.mark.eval_env
def test_lmms_eval_cli_runs_the_sparrow_model_end_to_end(setup, lmms_run):
    from sparrow.eval.curate import curate
    from sparrow.eval.results import ResultTable, condition_differences, load_results
    from sparrow.model import load_pretrained

    d = setup["dir"]
    out, _ = lmms_run
    logs = {p.name.split("_samples_")[1][: -len(".jsonl")]: p for p in out.rglob("*_samples_*.jsonl")}
    assert sorted(logs) == [
        "sparrow_world",
        "sparrow_world_frame",
        "sparrow_world_swap",
        "sparrow_world_text",
    ]
    for task, path in logs.items():
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        assert [x["doc_id"] for x in lines] == [0, 1, 2], task
        assert [x["sparrow_acc"]["id"] for x in lines] == ["r0", "r1", "r2"]
        assert all(x["sparrow_acc"]["correct"] == int(x["sparrow_acc"]["pred"] == x["target"]) for x in lines)
    # The replies lmms-eval logged are the replies Sparrow gives the same text-only samples.
    model, processor = load_pretrained(d / "ckpt")
    text_log = [json.loads(x) for x in logs["sparrow_world_text"].read_text().splitlines()]
    for row, line in zip(setup["rows"], text_log, strict=True):
        # The task's max_new_tokens (16) wins over the model arg; lmms-eval stops at "\n\n" and strips.
        reply = generate(model, processor, mcq_sample(row, "text"), d, max_new_tokens=16)
        assert line["filtered_resps"] == reply.split("\n\n")[0].strip()
        assert len(line["filtered_resps"]) > 3

    # The sample logs are curation input: one bench, four conditions, the rows' own ids.
    results = load_results(str(out))
    assert {(r.bench, r.condition) for r in results} == {
        ("sparrow_world", m) for m in ("video", "frame", "text", "swap")
    }
    (reliance,) = condition_differences(results, "swap").values()
    assert reliance["n"] == 3
    report = curate(ResultTable(results))
    assert sorted(d.qid for d in report.decisions) == ["r0", "r1", "r2"]


@pytest.mark.eval_env
def test_lmms_eval_loglikelihood_task_with_the_simple_model(setup, lmms_run):
    """The multiple-choice variant's per-option log-likelihoods are the letter scores `sparrow eval`
    computes, and its metric names the same prediction."""
    from sparrow.model import load_pretrained

    d = setup["dir"]
    _, samples = lmms_run
    assert [s[0] for s in samples] == [0, 1, 2]
    model, processor = load_pretrained(d / "ckpt")
    ref = [p for b in evaluate_rows(model, processor, setup["rows"], d, EvalConfig(batch_size=3)) for p in b]
    for (_, resps, acc), pred in zip(samples, ref, strict=True):
        lls = [float(r.strip("()[]").split(",")[0]) for r in resps]
        assert np.allclose(lls, list(pred["scores"].values()), atol=2e-4)
        assert (acc["id"], acc["pred"], bool(acc["correct"])) == (
            pred["id"],
            pred["prediction"],
            pred["correct"],
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
