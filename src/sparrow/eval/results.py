"""Per-question results of any models, read into one table: ``sparrow eval`` output folders and lmms-eval
sample logs (``*_samples_<task>.jsonl``), so a user can curate from runs they already have."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.eval.answers import parse_answer
from sparrow.eval.conditions import CONDITIONS
from sparrow.eval.errors import CurateError
from sparrow.io import LineError, iter_jsonl


@dataclass
class Result:
    """One model's answer to one question under one condition."""

    model: str
    condition: str
    bench: str
    qid: str
    correct: bool
    prediction: str | None = None
    category: str | None = None
    duration: float | str | None = None


# ------------------------------------------------------------------------------------------- loading

_SPEC = re.compile(rf"^(?:(?P<model>[\w.\-]+)@)?(?P<condition>{'|'.join(CONDITIONS)})?$")


@dataclass
class ResultSpec:
    """A results path with optional overrides, from the CLI form ``[MODEL@][CONDITION:]PATH``."""

    path: Path
    model: str | None = None
    condition: str | None = None


def parse_spec(spec: str) -> ResultSpec:
    """``runs/a`` or ``text:runs/a`` or ``qwen7b@frame:logs/x_samples_t.jsonl`` or ``qwen7b@:logs/``."""
    if ":" in spec and not Path(spec).exists():
        head, _, rest = spec.partition(":")
        m = _SPEC.match(head)
        if m and rest:
            return ResultSpec(Path(rest), m.group("model") or None, m.group("condition") or None)
    return ResultSpec(Path(spec))


_CONDITION_SUFFIXES = {
    "text": ("_text_only", "_textonly", "_text", "_blind", "_no_video", "_novideo"),
    "frame": ("_single_frame", "_centre_frame", "_center_frame", "_frame", "_1frame"),
    "swap": ("_swap", "_swapped", "_other_video"),
    "video": ("_video",),
}


def split_task_condition(task: str) -> tuple[str, str]:
    """``videomme_text`` -> (``videomme``, ``text``). Condition variants of one task must share a bench
    name so their questions line up; a task without a known suffix is the video condition."""
    low = task.lower()
    for condition, suffixes in _CONDITION_SUFFIXES.items():
        for suf in suffixes:
            if low.endswith(suf) and len(task) > len(suf):
                return task[: -len(suf)], condition
    return task, "video"


def load_results(spec: ResultSpec | str) -> list[Result]:
    """Read results from a ``sparrow eval`` output directory / predictions file, an lmms-eval sample log,
    or a directory holding several of them (searched recursively)."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    path = spec.path
    if not path.exists():
        raise CurateError(f"results path {str(path)!r} does not exist")
    if path.is_dir():
        if (path / "predictions.jsonl").is_file():
            return read_sparrow_predictions(path / "predictions.jsonl", spec.model, spec.condition)
        files = sorted(path.rglob("predictions.jsonl")) + sorted(path.rglob("*_samples_*.jsonl"))
        if not files:
            raise CurateError(f"{str(path)!r} holds no predictions.jsonl nor lmms-eval *_samples_*.jsonl")
        out: list[Result] = []
        for f in files:
            out += load_results(ResultSpec(f, spec.model, spec.condition))
        return out
    if path.name == "predictions.jsonl" or (path.parent / "run.json").is_file():
        return read_sparrow_predictions(path, spec.model, spec.condition)
    if "_samples_" in path.name and path.suffix == ".jsonl":
        return read_lmms_samples(path, spec.model, spec.condition)
    raise CurateError(
        f"cannot tell what {str(path)!r} is: expected a sparrow eval output (predictions.jsonl + run.json) "
        "or an lmms-eval sample log named *_samples_<task>.jsonl"
    )


def _jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    for lineno, obj in iter_jsonl(path):
        if isinstance(obj, LineError):
            raise CurateError(f"{path}:{lineno}: {obj.reason}")
        if not isinstance(obj, dict):
            raise CurateError(f"{path}:{lineno}: expected a JSON object")
        yield lineno, obj


def read_sparrow_predictions(
    path: Path, model: str | None = None, condition: str | None = None
) -> list[Result]:
    """``sparrow eval`` output: predictions.jsonl with run.json beside it (model name, condition, bench)."""
    run_path = path.parent / "run.json"
    run = json.loads(run_path.read_text()) if run_path.is_file() else {}
    model = model or run.get("name") or path.parent.name
    condition = condition or run.get("condition") or run.get("modality") or "video"  # older runs: "modality"
    bench = run.get("bench") or path.parent.name
    out = []
    for lineno, obj in _jsonl(path):
        if "id" not in obj or "correct" not in obj:
            raise CurateError(f"{path}:{lineno}: a prediction needs 'id' and 'correct'")
        out.append(
            Result(
                model=model,
                condition=condition,
                bench=bench,
                qid=str(obj["id"]),
                correct=bool(obj["correct"]),
                prediction=None if obj.get("prediction") is None else str(obj["prediction"]),
                category=obj.get("category"),
                duration=obj.get("duration"),
            )
        )
    return out


# Keys lmms-eval writes on every sample line; everything else on the line is a per-task metric.
_LMMS_STANDARD = {
    "doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "raw_filtered_resps", "input",
    "token_counts", "doc_hash", "prompt_hash", "target_hash", "input_media", "task_name",
}  # fmt: skip
_PRED_KEYS = ("pred_answer", "parsed_pred", "pred_ans", "pred", "prediction", "response_answer")
_GOLD_KEYS = ("answer", "gt_answer", "gt", "ground_truth", "correct_answer", "target")
_QID_KEYS = ("question_id", "qid", "id", "question_idx")
_CAT_KEYS = ("category", "task_type", "task_category", "question_type", "sub_task", "domain")
_SCORE_KEYS = ("acc", "accuracy", "exact_match", "correct", "score", "is_correct")


def _norm_choice(value: Any) -> str:
    return re.sub(r"[\s().\[\]]", "", str(value)).upper()


def _metric_correct(name: str, value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not math.isnan(float(value)):
        if name in _SCORE_KEYS or "acc" in name or "match" in name or "correct" in name:
            return float(value) >= 0.5
        return None
    if isinstance(value, dict):
        for k in _SCORE_KEYS:
            if isinstance(value.get(k), (int, float, bool)):
                return float(value[k]) >= 0.5
        pred = next((value[k] for k in _PRED_KEYS if value.get(k) is not None), None)
        gold = next((value[k] for k in _GOLD_KEYS if value.get(k) is not None), None)
        if pred is not None and gold is not None:
            return _norm_choice(pred) == _norm_choice(gold)
    return None


def _first_text(resp: Any) -> str | None:
    while isinstance(resp, list) and resp:
        resp = resp[0]
    return resp if isinstance(resp, str) else None


_LL_STR = re.compile(r"^\(\s*-?[\d.eE+\-]+(?:inf)?\s*,\s*(True|False)\s*\)$")


def _loglik_argmax(resp: Any) -> int | None:
    """Multiple-choice logs hold one [loglikelihood, is_greedy] (or a bare float) per option."""
    if not isinstance(resp, list) or len(resp) < 2:
        return None
    vals = []
    for r in resp:
        while isinstance(r, list) and r and isinstance(r[0], list):
            r = r[0]
        if isinstance(r, str) and _LL_STR.match(r.strip()):  # lmms-eval 0.7.3 logs "(-1.2, False)"
            r = [float(r.strip()[1:].split(",")[0])]
        if isinstance(r, list) and r and isinstance(r[0], (int, float)):
            vals.append(float(r[0]))
        elif isinstance(r, (int, float)) and not isinstance(r, bool):
            vals.append(float(r))
        else:
            return None
    return int(np.argmax(vals))


def _metric_info(obj: dict[str, Any]) -> tuple[bool | None, dict[str, Any]]:
    """Correctness from the first per-sample metric that tells it, and the first metric dict (its
    prediction, question id, category, duration)."""
    correct, info = None, {}
    for name, value in obj.items():
        if name in _LMMS_STANDARD:
            continue
        c = _metric_correct(name, value)
        if c is not None and correct is None:
            correct = c
        if isinstance(value, dict) and not info:
            info = value
    return correct, info


def _from_response(
    obj: dict[str, Any], correct: bool | None, pred: str | None
) -> tuple[bool | None, str | None]:
    """Without a metric: the argmax log-likelihood against the target index (multiple choice), or the
    reply's parsed letter against the target letter (generation)."""
    target = str(obj.get("target", "")).strip()
    idx = _loglik_argmax(obj.get("filtered_resps"))
    if idx is not None:
        if correct is None and target.isdigit():
            correct = idx == int(target)
        return correct, pred or str(idx)
    text = _first_text(obj.get("filtered_resps"))
    letter = parse_answer(text, None) if text is not None else None
    if letter is None:
        return correct, pred
    if correct is None and target:
        correct = _norm_choice(letter) == _norm_choice(target)[:1]
    return correct, pred or letter


def _first(d: dict[str, Any], keys: Sequence[str]) -> Any:
    return next((d[k] for k in keys if d.get(k) is not None), None)


def _lmms_result(obj: dict[str, Any], where: str, model: str, condition: str, bench: str) -> Result:
    if "doc_id" not in obj:
        raise CurateError(f"{where}: lmms-eval sample lines have a 'doc_id'")
    doc = obj.get("doc") if isinstance(obj.get("doc"), dict) else {}
    correct, info = _metric_info(obj)
    p = _first(info, _PRED_KEYS)
    pred = None if p is None else str(p)
    if correct is None or pred is None:
        correct, pred = _from_response(obj, correct, pred)
    if correct is None:
        raise CurateError(
            f"{where}: cannot tell whether the answer is correct (no per-sample metric such as 'acc' or a "
            "dict with prediction and answer, and the response could not be matched to the target)"
        )
    qid = _first(info, _QID_KEYS)
    if qid is None:
        qid = _first(doc, _QID_KEYS)
    category = _first(info, _CAT_KEYS)
    if category is None:
        category = _first(doc, _CAT_KEYS)
    duration = info.get("duration", doc.get("duration"))
    qid = str(obj["doc_id"] if qid is None else qid)
    return Result(model, condition, bench, qid, bool(correct), pred, category, duration)


def read_lmms_samples(path: Path, model: str | None = None, condition: str | None = None) -> list[Result]:
    """An lmms-eval sample log ``<date>_samples_<task>.jsonl`` (written under ``OUT/<model>/``).

    Correctness comes from the task's per-sample metric: a number (``acc``, ``exact_match``, ...) or a
    dict holding a score or a prediction and an answer (Video-MME, MVBench style). Without one, a
    multiple-choice log is scored by the argmax log-likelihood against the target index, and a generation
    by parsing its answer letter against the target letter. The question id is the metric's
    ``question_id`` / ``id`` when it has one, else the doc's, else ``doc_id``.
    """
    m = re.search(r"_samples_(.+)\.jsonl$", path.name)
    if not m:
        raise CurateError(f"{path.name!r} is not named like an lmms-eval sample log (*_samples_<task>.jsonl)")
    bench, task_condition = split_task_condition(m.group(1))
    out: list[Result] = []
    seen: set[str] = set()
    for lineno, obj in _jsonl(path):
        r = _lmms_result(
            obj, f"{path}:{lineno}", model or path.parent.name, condition or task_condition, bench
        )
        if r.qid not in seen:  # one line per filter: keep the first
            seen.add(r.qid)
            out.append(r)
    return out


def condition_differences(
    results: Iterable[Result], minus: str = "swap", samples: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per ``model@bench``: video accuracy minus condition ``minus``'s, paired over the questions both
    answered, overall and per category (``sparrow.eval.metrics.paired_block``). With ``minus="swap"``
    this is the video reliance; it works on any results ``load_results`` reads, lmms-eval sample logs
    of a task and its ``_swap`` variant included."""
    from sparrow.eval.metrics import paired_block

    cells: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        row = {"id": r.qid, "correct": r.correct, "category": r.category}
        cells[(r.model, r.bench)][r.condition].append(row)
    return {
        f"{model}@{bench}": paired_block(by["video"], by[minus], samples, seed)
        for (model, bench), by in cells.items()
        if by.get("video") and by.get(minus)
    }


# ----------------------------------------------------------------------------------------- the table


@dataclass
class Question:
    bench: str
    qid: str
    category: str | None = None
    duration: float | str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.bench, self.qid)


class ResultTable:
    """Per-question results, indexed by (bench, qid) then (model, condition). Input order is kept so that
    ties in the ranking break the same way on every run."""

    def __init__(self, results: Iterable[Result]):
        self.questions: dict[tuple[str, str], Question] = {}
        self.cells: dict[tuple[str, str], dict[tuple[str, str], Result]] = {}
        for r in results:
            if r.condition not in CONDITIONS:
                raise CurateError(
                    f"unknown condition {r.condition!r} for model {r.model!r}; use {CONDITIONS}"
                )
            key = (r.bench, r.qid)
            q = self.questions.get(key)
            if q is None:
                q = self.questions[key] = Question(r.bench, r.qid)
                self.cells[key] = {}
            q.category = q.category if q.category is not None else r.category
            q.duration = q.duration if q.duration is not None else r.duration
            cell = (r.model, r.condition)
            if cell in self.cells[key]:
                raise CurateError(
                    f"two results for question {r.qid!r} of {r.bench!r} from {r.model!r} ({r.condition})"
                )
            self.cells[key][cell] = r

    def models(self, condition: str = "video") -> list[str]:
        seen: dict[str, None] = {}
        for cells in self.cells.values():
            for m, mod in cells:
                if mod == condition:
                    seen.setdefault(m, None)
        return list(seen)

    def share_correct(self, key: tuple[str, str], condition: str) -> float | None:
        rs = [r for (m, mod), r in self.cells[key].items() if mod == condition]
        return None if not rs else sum(r.correct for r in rs) / len(rs)

    def answer_entropy(self, key: tuple[str, str], condition: str = "video") -> float:
        """Shannon entropy (bits) of the models' answers. Wrong answers count by which option they chose
        when predictions are known; otherwise all wrong answers count as one outcome."""
        rs = [r for (m, mod), r in self.cells[key].items() if mod == condition]
        if not rs:
            return 0.0
        use_pred = all(r.prediction is not None for r in rs)
        outcomes = Counter(("right" if r.correct else (r.prediction if use_pred else "wrong")) for r in rs)
        n = len(rs)
        return float(-sum((c / n) * math.log2(c / n) for c in outcomes.values()))

    def scores(self, keys: Sequence[tuple[str, str]], condition: str = "video") -> dict[str, float]:
        """Accuracy of each model over ``keys`` (questions a model has no result for are left out)."""
        tot: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for key in keys:
            for (m, mod), r in self.cells[key].items():
                if mod == condition:
                    tot[m][0] += r.correct
                    tot[m][1] += 1
        return {m: c / n for m, (c, n) in tot.items() if n}
