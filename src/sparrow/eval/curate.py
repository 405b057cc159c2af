"""ApolloBench-style benchmark curation, benchmark redundancy and scaling consistency.

Apollo (arXiv 2412.10360) curates a benchmark from per-question correctness of many models under three
conditions: the full video, the centre frame only, and text only. Questions that more than half of the
models answer from text alone or from one frame do not test video understanding and are dropped; the
rest are ranked by how much the models disagree (answer entropy) and the most discriminative are kept.
The curated set must still rank models like the full set does, which the report checks.

Inputs are per-question results of any models: ``sparrow eval`` output directories or lmms-eval sample
logs (``*_samples_<task>.jsonl``), so a user can curate from runs they already have. The library never
prints; ``sparrow curate`` and ``sparrow consistency`` do.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.eval.mcq import duration_bucket, parse_answer

MODALITIES = ("video", "frame", "text")


class CurateError(ValueError):
    """Curation inputs cannot be read or do not fit together; the message says which and why."""


@dataclass
class Result:
    """One model's answer to one question under one modality."""

    model: str
    modality: str
    bench: str
    qid: str
    correct: bool
    prediction: str | None = None
    category: str | None = None
    duration: float | str | None = None


# ------------------------------------------------------------------------------------------- loading

_SPEC = re.compile(r"^(?:(?P<model>[\w.\-]+)@)?(?P<modality>video|frame|text)?$")


@dataclass
class ResultSpec:
    """A results path with optional overrides, from the CLI form ``[MODEL@][MODALITY:]PATH``."""

    path: Path
    model: str | None = None
    modality: str | None = None


def parse_spec(spec: str) -> ResultSpec:
    """``runs/a`` or ``text:runs/a`` or ``qwen7b@frame:logs/x_samples_t.jsonl`` or ``qwen7b@:logs/``."""
    if ":" in spec and not Path(spec).exists():
        head, _, rest = spec.partition(":")
        m = _SPEC.match(head)
        if m and rest:
            return ResultSpec(Path(rest), m.group("model") or None, m.group("modality") or None)
    return ResultSpec(Path(spec))


_MODALITY_SUFFIXES = {
    "text": ("_text_only", "_textonly", "_text", "_blind", "_no_video", "_novideo"),
    "frame": ("_single_frame", "_centre_frame", "_center_frame", "_frame", "_1frame"),
    "video": ("_video",),
}


def split_task_modality(task: str) -> tuple[str, str]:
    """``videomme_text`` -> (``videomme``, ``text``). Modality variants of one task must share a bench
    name so their questions line up; a task without a known suffix is the video condition."""
    low = task.lower()
    for modality, suffixes in _MODALITY_SUFFIXES.items():
        for suf in suffixes:
            if low.endswith(suf) and len(task) > len(suf):
                return task[: -len(suf)], modality
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
            return read_sparrow_predictions(path / "predictions.jsonl", spec.model, spec.modality)
        files = sorted(path.rglob("predictions.jsonl")) + sorted(path.rglob("*_samples_*.jsonl"))
        if not files:
            raise CurateError(f"{str(path)!r} holds no predictions.jsonl nor lmms-eval *_samples_*.jsonl")
        out: list[Result] = []
        for f in files:
            out += load_results(ResultSpec(f, spec.model, spec.modality))
        return out
    if path.name == "predictions.jsonl" or (path.parent / "run.json").is_file():
        return read_sparrow_predictions(path, spec.model, spec.modality)
    if "_samples_" in path.name and path.suffix == ".jsonl":
        return read_lmms_samples(path, spec.model, spec.modality)
    raise CurateError(
        f"cannot tell what {str(path)!r} is: expected a sparrow eval output (predictions.jsonl + run.json) "
        "or an lmms-eval sample log named *_samples_<task>.jsonl"
    )


def _jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise CurateError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise CurateError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj


def read_sparrow_predictions(
    path: Path, model: str | None = None, modality: str | None = None
) -> list[Result]:
    """``sparrow eval`` output: predictions.jsonl with run.json beside it (model name, modality, bench)."""
    run_path = path.parent / "run.json"
    run = json.loads(run_path.read_text()) if run_path.is_file() else {}
    model = model or run.get("name") or path.parent.name
    modality = modality or run.get("modality") or "video"
    bench = run.get("bench") or path.parent.name
    out = []
    for lineno, obj in _jsonl(path):
        if "id" not in obj or "correct" not in obj:
            raise CurateError(f"{path}:{lineno}: a prediction needs 'id' and 'correct'")
        out.append(
            Result(
                model=model,
                modality=modality,
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


def read_lmms_samples(path: Path, model: str | None = None, modality: str | None = None) -> list[Result]:
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
    task = m.group(1)
    bench, task_modality = split_task_modality(task)
    modality = modality or task_modality
    model = model or path.parent.name
    out: list[Result] = []
    seen: set[str] = set()
    for lineno, obj in _jsonl(path):
        if "doc_id" not in obj:
            raise CurateError(f"{path}:{lineno}: lmms-eval sample lines have a 'doc_id'")
        doc = obj.get("doc") if isinstance(obj.get("doc"), dict) else {}
        metrics = {k: v for k, v in obj.items() if k not in _LMMS_STANDARD}
        correct = None
        info: dict[str, Any] = {}
        for name, value in metrics.items():
            c = _metric_correct(name, value)
            if c is not None and correct is None:
                correct = c
            if isinstance(value, dict) and not info:
                info = value
        pred: str | None = None
        if isinstance(info, dict):
            p = next((info[k] for k in _PRED_KEYS if info.get(k) is not None), None)
            pred = None if p is None else str(p)
        target = str(obj.get("target", ""))
        if correct is None or pred is None:
            idx = _loglik_argmax(obj.get("filtered_resps"))
            if idx is not None:
                pred = pred or str(idx)
                if correct is None and target.strip().isdigit():
                    correct = idx == int(target.strip())
            else:
                text = _first_text(obj.get("filtered_resps"))
                letter = parse_answer(text, None) if text is not None else None
                if letter is not None:
                    pred = pred or letter
                    if correct is None and len(target.strip()) >= 1:
                        correct = _norm_choice(letter) == _norm_choice(target)[:1]
        if correct is None:
            raise CurateError(
                f"{path}:{lineno}: cannot tell whether the answer is correct (no per-sample metric such as "
                "'acc' or a dict with prediction and answer, and the response could not be matched to the target)"
            )
        qid = next((info[k] for k in _QID_KEYS if isinstance(info, dict) and info.get(k) is not None), None)
        if qid is None:
            qid = next((doc[k] for k in _QID_KEYS if doc.get(k) is not None), obj["doc_id"])
        qid = str(qid)
        if qid in seen:  # one line per filter: keep the first
            continue
        seen.add(qid)
        src = info if isinstance(info, dict) else {}
        category = next((src.get(k) for k in _CAT_KEYS if src.get(k) is not None), None)
        if category is None:
            category = next((doc.get(k) for k in _CAT_KEYS if doc.get(k) is not None), None)
        duration = src.get("duration", doc.get("duration"))
        out.append(Result(model, modality, bench, qid, bool(correct), pred, category, duration))
    return out


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
    """Per-question results, indexed by (bench, qid) then (model, modality). Input order is kept so that
    ties in the ranking break the same way on every run."""

    def __init__(self, results: Iterable[Result]):
        self.questions: dict[tuple[str, str], Question] = {}
        self.cells: dict[tuple[str, str], dict[tuple[str, str], Result]] = {}
        for r in results:
            if r.modality not in MODALITIES:
                raise CurateError(f"unknown modality {r.modality!r} for model {r.model!r}; use {MODALITIES}")
            key = (r.bench, r.qid)
            q = self.questions.get(key)
            if q is None:
                q = self.questions[key] = Question(r.bench, r.qid)
                self.cells[key] = {}
            q.category = q.category if q.category is not None else r.category
            q.duration = q.duration if q.duration is not None else r.duration
            cell = (r.model, r.modality)
            if cell in self.cells[key]:
                raise CurateError(
                    f"two results for question {r.qid!r} of {r.bench!r} from {r.model!r} ({r.modality})"
                )
            self.cells[key][cell] = r

    def models(self, modality: str = "video") -> list[str]:
        seen: dict[str, None] = {}
        for cells in self.cells.values():
            for m, mod in cells:
                if mod == modality:
                    seen.setdefault(m, None)
        return list(seen)

    def share_correct(self, key: tuple[str, str], modality: str) -> float | None:
        rs = [r for (m, mod), r in self.cells[key].items() if mod == modality]
        return None if not rs else sum(r.correct for r in rs) / len(rs)

    def answer_entropy(self, key: tuple[str, str], modality: str = "video") -> float:
        """Shannon entropy (bits) of the models' answers. Wrong answers count by which option they chose
        when predictions are known; otherwise all wrong answers count as one outcome."""
        rs = [r for (m, mod), r in self.cells[key].items() if mod == modality]
        if not rs:
            return 0.0
        use_pred = all(r.prediction is not None for r in rs)
        outcomes = Counter(("right" if r.correct else (r.prediction if use_pred else "wrong")) for r in rs)
        n = len(rs)
        return float(-sum((c / n) * math.log2(c / n) for c in outcomes.values()))

    def scores(self, keys: Sequence[tuple[str, str]], modality: str = "video") -> dict[str, float]:
        """Accuracy of each model over ``keys`` (questions a model has no result for are left out)."""
        tot: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for key in keys:
            for (m, mod), r in self.cells[key].items():
                if mod == modality:
                    tot[m][0] += r.correct
                    tot[m][1] += 1
        return {m: c / n for m, (c, n) in tot.items() if n}


# ------------------------------------------------------------------------------------------ curation


@dataclass
class CurateConfig:
    threshold: float = 0.5  # drop when MORE than this share of models is right from text or frame
    top_k: int | None = None  # keep this many (overall, or per category); None keeps all that pass
    per_category: bool = False
    buckets: tuple[float, ...] = (30.0, 120.0, 600.0)


@dataclass
class Decision:
    bench: str
    qid: str
    category: str | None
    duration: float | str | None
    text_share: float | None
    frame_share: float | None
    entropy: float
    kept: bool
    reason: str  # "kept", "text-answerable", "frame-answerable", "below top-k"
    rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CurationReport:
    decisions: list[Decision]
    kept: list[Decision]
    models: list[str]
    full_scores: dict[str, float]
    curated_scores: dict[str, float]
    correlation: dict[str, float | None]
    cost: dict[str, float | int | None]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        reasons = Counter(d.reason for d in self.decisions)
        return {
            "questions": len(self.decisions),
            "kept": len(self.kept),
            "dropped_text_answerable": reasons.get("text-answerable", 0),
            "dropped_frame_answerable": reasons.get("frame-answerable", 0),
            "dropped_below_top_k": reasons.get("below top-k", 0),
            "models": len(self.models),
            **{f"cost_{k}": v for k, v in self.cost.items()},
            **self.correlation,
        }


def curate(table: ResultTable, config: CurateConfig | None = None) -> CurationReport:
    """Apollo's recipe: drop text/frame-answerable questions, rank the rest by answer entropy, keep top K."""
    config = config or CurateConfig()
    notes: list[str] = []
    keys = list(table.questions)
    if not keys:
        raise CurateError("no questions in the results")
    models = table.models("video")
    if not models:
        raise CurateError("no results under the video modality; curation ranks questions by video answers")
    for mod in ("text", "frame"):
        if not table.models(mod):
            notes.append(f"no {mod}-only results: {mod}-answerable questions could not be detected")
    decisions: list[Decision] = []
    for key in keys:
        q = table.questions[key]
        ts, fs = table.share_correct(key, "text"), table.share_correct(key, "frame")
        if ts is not None and ts > config.threshold:
            reason = "text-answerable"
        elif fs is not None and fs > config.threshold:
            reason = "frame-answerable"
        else:
            reason = "kept"
        decisions.append(
            Decision(
                q.bench,
                q.qid,
                q.category,
                q.duration,
                ts,
                fs,
                table.answer_entropy(key),
                reason == "kept",
                reason,
            )
        )
    passing = [d for d in decisions if d.kept]
    order = sorted(range(len(passing)), key=lambda i: (-passing[i].entropy, i))  # stable on ties
    ranked = [passing[i] for i in order]
    if config.top_k is not None:
        if config.per_category:
            taken: Counter[str | None] = Counter()
            chosen = []
            for d in ranked:
                if taken[d.category] < config.top_k:
                    taken[d.category] += 1
                    chosen.append(d)
        else:
            chosen = ranked[: config.top_k]
        chosen_ids = {id(d) for d in chosen}
        for d in ranked:
            if id(d) not in chosen_ids:
                d.kept, d.reason = False, "below top-k"
        ranked = chosen
    for i, d in enumerate(ranked):
        d.rank = i + 1
    kept_keys = [(d.bench, d.qid) for d in ranked]
    full = table.scores(keys)
    cur = table.scores(kept_keys)
    common = [m for m in models if m in full and m in cur]
    corr = rank_agreement([full[m] for m in common], [cur[m] for m in common])
    if len(common) < 3:
        notes.append(f"only {len(common)} models: rank correlations are not meaningful")
    cost = _cost(table, keys, kept_keys)
    return CurationReport(decisions, ranked, models, full, cur, corr, cost, notes)


def _cost(table: ResultTable, full: list[tuple[str, str]], kept: list[tuple[str, str]]) -> dict[str, Any]:
    """Evaluation-cost reduction: questions, and video seconds where durations are known (decoding and
    visual tokens grow with the video, so seconds are the closer proxy for compute)."""
    out: dict[str, Any] = {"questions_full": len(full), "questions_kept": len(kept)}
    out["reduction_x"] = (len(full) / len(kept)) if kept else None

    def secs(keys: list[tuple[str, str]]) -> float | None:
        ds = [table.questions[k].duration for k in keys]
        return None if not ds or not all(isinstance(d, (int, float)) for d in ds) else float(sum(ds))

    sf, sk = secs(full), secs(kept)
    if sf is not None and sk:
        out["video_seconds_full"], out["video_seconds_kept"] = sf, sk
        out["video_seconds_reduction_x"] = sf / sk
    return out


def r_squared(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Squared Pearson correlation (the R² of a least-squares line), None when undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    return r * r


def rank_agreement(x: Sequence[float], y: Sequence[float]) -> dict[str, float | None]:
    """Spearman rho, Kendall tau (tau-b, ties handled) and R² between two score vectors."""
    from scipy import stats

    out: dict[str, float | None] = {"spearman": None, "kendall": None, "r2": r_squared(x, y)}
    if len(x) >= 2 and np.std(x) > 0 and np.std(y) > 0:
        out["spearman"] = float(stats.spearmanr(x, y).statistic)
        out["kendall"] = float(stats.kendalltau(x, y).statistic)
    return out


# --------------------------------------------------------------------------------------- redundancy


def group_scores(
    table: ResultTable, by: str, buckets: Sequence[float] = (30.0, 120.0, 600.0)
) -> dict[str, dict[str, float]]:
    """Model accuracies (video modality) per group: ``by`` is "bench", "category" or "duration"."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, q in table.questions.items():
        if by == "bench":
            g = q.bench
        elif by == "category":
            g = q.category
        elif by == "duration":
            g = q.duration if isinstance(q.duration, str) else duration_bucket(q.duration, buckets)
        else:
            raise CurateError(f"unknown grouping {by!r}; use bench, category or duration")
        if g is not None:
            groups[str(g)].append(key)
    return {g: table.scores(keys) for g, keys in sorted(groups.items())}


def redundancy_matrix(scores: dict[str, dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """Pairwise R² of model scores between groups (models both groups share); NaN where undefined.
    A high R² means one group ranks models like the other: evaluating both adds little."""
    names = list(scores)
    mat = np.full((len(names), len(names)), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            common = [m for m in scores[a] if m in scores[b]]
            r2 = r_squared([scores[a][m] for m in common], [scores[b][m] for m in common])
            mat[i, j] = np.nan if r2 is None else r2
    return names, mat


def plot_heatmap(names: list[str], mat: np.ndarray, path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    fig, ax = plt.subplots(figsize=(2.2 + 0.8 * max(n, 2), 1.4 + 0.7 * max(n, 2)))
    im = ax.imshow(np.ma.masked_invalid(mat), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            v = mat[i, j]
            label = "–" if np.isnan(v) else f"{v:.2f}"
            ax.text(
                j, i, label, ha="center", va="center", color="white" if np.isnan(v) or v < 0.6 else "black"
            )
    fig.suptitle(title, fontsize=11)  # above the colour bar too, so the two never overlap
    fig.colorbar(im, ax=ax, label="R² of model scores", fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------------------------- consistency


def read_variant_scores(path: str | Path) -> dict[str, dict[str, float]]:
    """Scores of design variants at several model sizes: CSV ``variant,<size>,<size>...`` (wide), CSV
    ``variant,size,score`` (long) or JSON ``{variant: {size: score}}``. Returns {size: {variant: score}}."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise CurateError(f"scores file {str(path)!r} does not exist")
    out: dict[str, dict[str, float]] = defaultdict(dict)
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise CurateError(f"{path}: expected an object {{variant: {{size: score}}}}")
        for variant, by_size in data.items():
            if not isinstance(by_size, dict):
                raise CurateError(f"{path}: variant {variant!r} must map sizes to scores")
            for size, score in by_size.items():
                out[str(size)][str(variant)] = float(score)
        return dict(out)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise CurateError(f"{path}: needs a header and at least one row")
    header = [h.strip() for h in rows[0]]
    try:
        if [h.lower() for h in header] == ["variant", "size", "score"]:
            for r in rows[1:]:
                if r:
                    out[r[1].strip()][r[0].strip()] = float(r[2])
        else:
            for r in rows[1:]:
                if r:
                    for size, v in zip(header[1:], r[1:], strict=False):
                        if v.strip():
                            out[size][r[0].strip()] = float(v)
    except (ValueError, IndexError) as e:
        raise CurateError(f"{path}: bad score row ({e})") from None
    return dict(out)


def consistency(small: dict[str, float], large: dict[str, float]) -> dict[str, Any]:
    """Apollo's scaling consistency: R² between the scores of the same design variants at two sizes.
    High R² means design decisions measured on the small model transfer to the large one."""
    common = [v for v in small if v in large]
    if len(common) < 3:
        raise CurateError(f"need at least 3 variants scored at both sizes, got {len(common)}")
    x, y = [small[v] for v in common], [large[v] for v in common]
    slope, intercept = np.polyfit(x, y, 1) if np.std(x) > 0 else (float("nan"), float("nan"))
    return {
        "variants": common,
        "small": x,
        "large": y,
        "slope": float(slope),
        "intercept": float(intercept),
    } | (rank_agreement(x, y))


def plot_consistency(res: dict[str, Any], path: str | Path, small_name: str, large_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    x, y = np.asarray(res["small"]), np.asarray(res["large"])
    ax.scatter(x, y, color="tab:blue", zorder=3)
    for v, a, b in zip(res["variants"], x, y, strict=True):
        ax.annotate(v, (a, b), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if not math.isnan(res["slope"]):
        xs = np.linspace(x.min(), x.max(), 10)
        ax.plot(xs, res["slope"] * xs + res["intercept"], color="tab:orange", lw=1.5)
    r2 = res["r2"]
    ax.set_title(f"Scaling consistency: R² = {r2:.3f}" if r2 is not None else "Scaling consistency")
    ax.set_xlabel(f"score at {small_name}")
    ax.set_ylabel(f"score at {large_name}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
