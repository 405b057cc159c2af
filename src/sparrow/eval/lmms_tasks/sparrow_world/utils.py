"""lmms-eval task functions for a Sparrow benchmark file (rows as ``sparrow world`` writes them).

The prompt is ``sparrow.mcq.format_mcq_prompt`` — the phrasing the model was trained on — so scores
match ``sparrow eval``. Per-sample metrics carry the row's id, category and duration, so the sample
logs (``*_samples_<task>.jsonl``) can be fed to ``sparrow curate`` directly.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

from sparrow.eval.answers import parse_answer
from sparrow.mcq import LETTERS, format_mcq_prompt, letter_index

HERE = Path(__file__).resolve().parent
_LL_STR = re.compile(r"^\(\s*-?[\d.eE+\-]+(?:inf)?\s*,\s*(True|False)\s*\)$")


def _kwargs(kw: dict | None) -> dict:
    return kw or {}


def _bench_root(kw: dict) -> Path:
    root = Path(kw.get("bench_root") or ".")
    return root if root.is_absolute() else (HERE / root).resolve()


def _video_path(doc: dict, kw: dict) -> Path:
    root = _bench_root(kw)
    path = (root / doc["video"]).resolve()
    if root not in path.parents:
        raise ValueError(f"video path {doc['video']!r} leaves the benchmark folder {root}")
    return path


def _centre_frame(video: Path, doc_id: str) -> str:
    """The middle frame as a PNG, cached in this folder's frames/ (decoded once per question)."""
    out = HERE / "frames" / f"{doc_id}.png"
    if not out.exists():
        from PIL import Image

        from sparrow.video import Uniform, sample

        clip = sample(video, Uniform(1))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp.png")
        Image.fromarray(clip.frames[0]).save(tmp)
        os.replace(tmp, out)
    return str(out)


_SWAP: dict = {}


def _swapped(doc: dict) -> dict:
    """The doc with the video it is asked with under ``swap``: from swap_videos.json beside this file
    (``sparrow lmms-task`` writes it with ``sparrow.eval.conditions.swap_videos``, as `sparrow eval` uses)."""
    if not _SWAP:
        path = HERE / "swap_videos.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: write this task folder with `sparrow lmms-task`")
        _SWAP.update(json.loads(path.read_text(encoding="utf-8")))
    if doc["id"] not in _SWAP:
        raise KeyError(f"question {doc['id']!r} has no swapped video in swap_videos.json")
    return {**doc, "video": _SWAP[doc["id"]]}


def doc_to_visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list:
    kw = _kwargs(lmms_eval_specific_kwargs)
    condition = kw.get("condition", "video")  # sparrow.eval.conditions: video, frame, text or swap
    if condition == "text" or not doc.get("video"):
        return []
    video = _video_path(_swapped(doc) if condition == "swap" else doc, kw)
    if condition == "frame":
        return [_centre_frame(video, doc["id"])]
    return [str(video)]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    return format_mcq_prompt(doc["question"], list(doc["options"]))


def doc_to_target(doc: dict) -> str:
    return str(doc["answer"])


def doc_to_choice(doc: dict) -> list[str]:
    return list(LETTERS[: len(doc["options"])])


def doc_to_answer_index(doc: dict) -> int:
    return letter_index(str(doc["answer"]))


def _unwrap(r):
    """A filter may leave ``[(loglikelihood, is_greedy)]`` or ``["reply"]``: take the single element.
    lmms-eval 0.7.3 hands log-likelihood results over as their string form ``"(-1.2, False)"``."""
    while isinstance(r, list) and len(r) == 1 and isinstance(r[0], (list, tuple, str)):
        r = r[0]
    if isinstance(r, str) and _LL_STR.match(r):
        r = ast.literal_eval(r)
    return r


def process_results(doc: dict, results: list) -> dict:
    """Generation: parse the reply's letter. Multiple choice: the option with the highest log-likelihood."""
    options = list(doc["options"])
    results = [_unwrap(r) for r in results]
    first = results[0] if results else None
    if isinstance(first, (list, tuple)) and first and isinstance(first[0], (int, float)):
        lls = [float(r[0]) for r in results]
        pred = LETTERS[max(range(len(lls)), key=lls.__getitem__)]
    else:
        pred = parse_answer(first if isinstance(first, str) else "", options)
    answer = str(doc["answer"])
    return {
        "sparrow_acc": {
            "id": doc["id"],
            "category": doc.get("category"),
            "duration": doc.get("duration"),
            "pred": pred,
            "answer": answer,
            "correct": int(pred == answer),
        }
    }


def aggregate_accuracy(results: list[dict]) -> float:
    return sum(r["correct"] for r in results) / max(len(results), 1)
