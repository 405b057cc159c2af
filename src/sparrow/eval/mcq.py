"""Multiple-choice evaluation of a Sparrow checkpoint under Apollo's three conditions.

A benchmark row (``world`` writes them; any JSONL of the same shape works)::

    {"id", "video", "question", "options": [...], "answer": "B", "category", "duration", ...}

becomes a native Sample phrased exactly like training data (``sparrow.mcq.format_mcq_prompt``) under one
modality: ``video`` (frames sampled per the model's config or an override), ``frame`` (the centre frame
only, no time text, so nothing but the picture is added to the question) or ``text`` (no media and no
placeholder). It is answered either by option log-likelihood — the log-probability of each option's
letter as the first token(s) of the reply, which is how the training target ``"B. red"`` starts — or by
greedy generation and answer parsing.

Results are saved per batch under ``OUT/.state`` so an interrupted run resumes where it stopped and ends
with the same files as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.io import LineError, iter_jsonl
from sparrow.mcq import LETTERS, format_mcq_answer, format_mcq_prompt, letter_index, option_letter
from sparrow.records import VIDEO_TOKEN, Media, RecordError, Sample

EVAL_MODALITIES = ("video", "frame", "text")
# loglik: log-likelihood of each option's letter after the lettered prompt (the default);
# generate: greedy reply, parsed; cloze: the question alone, each option's text scored as the reply
# (lm-eval-harness style), which needs no letter binding and so suits very small models; cloze_norm: the
# same, each option's summed log-prob divided by its number of tokens (lm-eval's acc_norm idea). A summed
# score favours short options: an untrained model scores ~0.33, not 0.25, on the world's benchmark.
METHODS = ("loglik", "generate", "cloze", "cloze_norm")
CLOZE_METHODS = ("cloze", "cloze_norm")


# --------------------------------------------------------------------------------------- bench rows


@dataclass
class BenchRow:
    id: str
    video: str | None
    question: str
    options: list[str]
    answer_index: int
    category: str | None = None
    duration: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        return option_letter(self.answer_index)


def parse_bench_row(obj: Any) -> BenchRow:
    """Validate one benchmark row; raises RecordError with a one-line reason."""
    if not isinstance(obj, dict):
        raise RecordError(f"benchmark row must be a JSON object, got {type(obj).__name__}")
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        raise RecordError("benchmark row needs a non-empty string 'id'")
    q, opts = obj.get("question"), obj.get("options")
    if not isinstance(q, str) or not q.strip():
        raise RecordError(f"row {rid!r}: needs a non-empty 'question'")
    if not isinstance(opts, list) or len(opts) < 2 or not all(isinstance(o, str) for o in opts):
        raise RecordError(f"row {rid!r}: 'options' must be a list of at least two strings")
    if len(opts) > len(LETTERS):
        raise RecordError(f"row {rid!r}: more than {len(LETTERS)} options")
    ans = obj.get("answer", obj.get("answer_index"))
    try:
        idx = ans if isinstance(ans, int) and not isinstance(ans, bool) else letter_index(str(ans))
    except ValueError:
        raise RecordError(f"row {rid!r}: 'answer' must be an option letter, got {ans!r}") from None
    if not 0 <= idx < len(opts):
        raise RecordError(f"row {rid!r}: answer {ans!r} is not one of the {len(opts)} options")
    video = obj.get("video")
    if video is not None and not isinstance(video, str):
        raise RecordError(f"row {rid!r}: 'video' must be a path string")
    dur = obj.get("duration")
    return BenchRow(
        id=rid,
        video=video or None,
        question=q,
        options=list(opts),
        answer_index=idx,
        category=None if obj.get("category") is None else str(obj["category"]),
        duration=float(dur) if isinstance(dur, (int, float)) and not isinstance(dur, bool) else None,
        raw=obj,
    )


def read_bench(path: str | os.PathLike) -> tuple[list[BenchRow], list[LineError]]:
    """All rows of a benchmark file (small by nature); bad lines come back as LineError."""
    rows: list[BenchRow] = []
    bad: list[LineError] = []
    seen: set[str] = set()
    for lineno, obj in iter_jsonl(path):
        if isinstance(obj, LineError):
            bad.append(obj)
            continue
        try:
            row = parse_bench_row(obj)
            if row.id in seen:
                raise RecordError(f"duplicate id {row.id!r}")
        except RecordError as e:
            bad.append(LineError(str(path), lineno, str(e)))
            continue
        seen.add(row.id)
        rows.append(row)
    return rows, bad


def build_sample(row: BenchRow, modality: str, cloze: bool = False) -> Sample:
    """The native Sample a model sees for ``row`` under ``modality`` (no assistant turn: it is asked).
    ``cloze``: the bare question, without the lettered options (each option is then scored as the reply)."""
    if modality not in EVAL_MODALITIES:
        raise ValueError(f"modality must be one of {EVAL_MODALITIES}, got {modality!r}")
    prompt = row.question.strip() if cloze else format_mcq_prompt(row.question, row.options)
    meta = {"category": row.category, "duration": row.duration, "answer": row.answer}
    if modality == "text":
        return Sample(id=row.id, messages=[{"role": "user", "content": prompt}], meta=meta)
    if not row.video:
        raise RecordError(f"row {row.id!r}: no 'video' for modality {modality!r}")
    return Sample(
        id=row.id,
        messages=[{"role": "user", "content": f"{VIDEO_TOKEN}\n{prompt}"}],
        media=[Media(type="video", path=row.video)],
        meta=meta,
    )


def modality_sampling(base: Any, modality: str) -> Any:
    """Sampling for a modality. ``frame``: one frame at the middle of the video (``Uniform(1)``) with no
    duration header and no time prefix — Apollo's single-frame condition adds nothing but the picture."""
    if modality == "frame":
        return replace(base, strategy="uniform", num_frames=1, min_frames=1, timestamps="none", header=False)
    return base


def parse_sampling_overrides(text: str | None, base: Any) -> Any:
    """``"strategy=uniform,num_frames=16"`` applied over a SamplingConfig (types follow the defaults)."""
    if not text:
        return base
    known = {f.name: f for f in fields(base)}
    changes: dict[str, Any] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in known:
            raise ValueError(f"bad sampling override {part!r}; use key=value with keys {sorted(known)}")
        current = getattr(base, key)
        if value.lower() in ("none", "null") and not isinstance(current, str):
            changes[key] = None  # max_frames=none, image_size=none; "none" stays a word for timestamps
        elif isinstance(current, bool):
            changes[key] = value.lower() in ("1", "true", "yes", "on")
        elif isinstance(current, int) or key in (
            "num_frames",
            "min_frames",
            "max_frames",
            "max_clips",
            "image_size",
        ):
            changes[key] = int(value)
        elif isinstance(current, float) or key == "fps":
            changes[key] = float(value)
        else:
            changes[key] = value
    return replace(base, **changes)


# ----------------------------------------------------------------------------------- answer parsing

_LEAD = re.compile(r"^[\s*_\"'`]*[(\[]?\s*([A-Za-z])\s*(?:[.):\],]|\s*$)")
_PHRASE = re.compile(
    r"\b(?:the\s+)?(?:correct\s+|best\s+|final\s+)?(?:answer|option|choice)\s*(?:is|would\s+be|:)?\s*:?\s*"
    r"[(\[]?\s*([A-Za-z])\b(?![.'\-]?\w)",
    re.IGNORECASE,
)
_LONE = re.compile(r"(?<![A-Za-z'\-])([A-Z])(?![A-Za-z'\-])")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def parse_answer(text: str | None, options: Sequence[str] | None) -> str | None:
    """The option letter a free-form reply gives, or None.

    In order: a reply that starts with a letter (``B``, ``(B)``, ``B. red``, ``B: ...``); an explicit
    phrase (``the answer is C``, ``Option (D)``); the text of exactly one option (``red``); one lone
    capital letter (``I'd say C.``). A letter inside a word (``Based on ...``) is never an answer, nor is
    the article ``A`` before a word. With ``options`` None any letter is accepted.
    """
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    n = len(options) if options is not None else len(LETTERS)

    def ok(letter: str) -> str | None:
        letter = letter.upper()
        return letter if LETTERS.index(letter) < n else None

    m = _LEAD.match(text)
    if m:
        letter = m.group(1)
        # A lowercase lead letter counts only alone or bracketed ("b", "(b)"), never "a. ..." prose.
        if letter.isupper() or re.fullmatch(r"[\s(\[]*[A-Za-z][\s.)\]]*", text):
            got = ok(letter)
            if got:
                return got
    for m in _PHRASE.finditer(text):
        letter = m.group(1)
        if letter.islower() and re.match(r"\s+[a-z]", text[m.end() :]):
            continue  # "the answer is a bit unclear": an article, not option A
        if ok(letter):
            return ok(letter)
    if options:
        hay = f" {_norm(text)} "
        hits = [i for i, o in enumerate(options) if _norm(o) and f" {_norm(o)} " in hay]
        # "dark red" contains "red": keep the longest matches only.
        hits = [
            i
            for i in hits
            if not any(j != i and f" {_norm(options[i])} " in f" {_norm(options[j])} " for j in hits)
        ]
        if len(hits) == 1:
            return option_letter(hits[0])
    lone = set()
    for m in _LONE.finditer(text):
        letter = m.group(1)
        after = text[m.end() : m.end() + 2]
        if letter in ("A", "I") and re.match(r"\s[a-z]", after):
            continue  # the article "A" / pronoun "I" before a word
        if ok(letter):
            lone.add(letter)
    return lone.pop() if len(lone) == 1 else None


# ------------------------------------------------------------------------------------------ metrics


def duration_bucket(duration: float | None, edges: Sequence[float] = (30.0, 120.0, 600.0)) -> str | None:
    """``"<30s"``, ``"30s-2m"``, ... for a duration in seconds (None when unknown)."""
    if duration is None:
        return None

    def fmt(s: float) -> str:
        return f"{s / 60:g}m" if s >= 60 and s % 60 == 0 else f"{s:g}s"

    edges = sorted(edges)
    if not edges or duration < edges[0]:
        return f"<{fmt(edges[0])}" if edges else "all"
    for a, b in zip(edges, edges[1:], strict=False):
        if duration < b:
            return f"{fmt(a)}-{fmt(b)}"
    return f">={fmt(edges[-1])}"


def bootstrap_ci(
    correct: Sequence[bool], samples: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Percentile bootstrap interval of the accuracy (resampling questions with replacement)."""
    c = np.asarray(correct, dtype=np.float64)
    if not len(c):
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = c[rng.integers(0, len(c), size=(samples, len(c)))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return [float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))]


def compute_metrics(
    preds: Sequence[dict[str, Any]],
    buckets: Sequence[float] = (30.0, 120.0, 600.0),
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy overall, per category and per duration bucket, each with a bootstrap 95 % interval."""

    def block(items: list[dict[str, Any]], offset: int) -> dict[str, Any]:
        c = [bool(p["correct"]) for p in items]
        return {
            "n": len(c),
            "accuracy": float(np.mean(c)) if c else float("nan"),
            "ci95": bootstrap_ci(c, samples, seed + offset),
        }

    scored = [p for p in preds if "correct" in p]
    by_cat: dict[str, list] = defaultdict(list)
    by_dur: dict[str, list] = defaultdict(list)
    for p in scored:
        by_cat[str(p.get("category"))].append(p)
        b = duration_bucket(p.get("duration"), buckets)
        if b is not None:
            by_dur[b].append(p)
    order = [duration_bucket(e - 1e-9, buckets) for e in sorted(buckets)] + [
        duration_bucket(max(buckets), buckets)
    ]
    out = block(scored, 0)
    out["unanswered"] = sum(1 for p in scored if p.get("prediction") is None)
    out["by_category"] = {k: block(v, i + 1) for i, (k, v) in enumerate(sorted(by_cat.items()))}
    out["by_duration"] = {k: block(by_dur[k], 100 + i) for i, k in enumerate(order) if k in by_dur}
    out["bootstrap"] = {"samples": samples, "seed": seed, "level": 0.95}
    return out


# --------------------------------------------------------------------------------------- evaluation


@dataclass
class EvalConfig:
    modality: str = "video"
    method: str = "loglik"  # loglik | generate
    batch_size: int = 8
    max_new_tokens: int = 16
    sampling: Any = None  # SamplingConfig override; None = the checkpoint's
    media_root: str | None = None

    def __post_init__(self) -> None:
        if self.modality not in EVAL_MODALITIES:
            raise ValueError(f"modality must be one of {EVAL_MODALITIES}, got {self.modality!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


def letter_candidates(tokenizer: Any, options: Sequence[str]) -> list[str]:
    """Per option, the text of the first token(s) of its training reply that hold the letter.

    A BPE tokenizer may merge ``"B."`` into one token; scoring the bare ``"B"`` would then ask for a
    token the model never produced first. Scoring the reply's own leading token(s) matches training."""
    out = []
    for i in range(len(options)):
        reply = format_mcq_answer(list(options), i)
        ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        letter = option_letter(i)
        cand = letter
        for k in range(1, len(ids) + 1):
            text = tokenizer.decode(ids[:k])
            if text.strip().startswith(letter):
                cand = text
                break
        out.append(cand)
    return out


def score_batch(
    model: Any, processor: Any, feats: list[dict[str, Any]], cand_ids: list[list[list[int]]]
) -> tuple[list[list[float]], list[int]]:
    """Log-prob of each single-token candidate after each prompt (``processor(..., generation=True)``
    features), in one forward for the whole batch; also each prompt's greedy next token.
    Prompts are left-padded so every row's last position is its own next-token prediction; position ids
    restart at each row's first real token, so padding changes nothing."""
    import torch
    import torch.nn.functional as F

    device = model.device
    width = max(int(f["input_ids"].shape[0]) for f in feats)
    b = len(feats)
    ids = torch.full((b, width), processor.pad_token_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for r, f in enumerate(feats):
        n = int(f["input_ids"].shape[0])
        ids[r, width - n :] = f["input_ids"]
        mask[r, width - n :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    pix = [f["pixel_values"] for f in feats if f.get("pixel_values") is not None]
    groups = [f["group_sizes"] for f in feats]
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=pos.to(device),
        pixel_values=torch.cat(pix).to(device) if pix else None,
        group_sizes=torch.cat(groups) if groups else None,
        logits_to_keep=1,
    )
    logp = F.log_softmax(out.logits[:, -1].float(), dim=-1).cpu()
    greedy = logp.argmax(-1).tolist()
    return [[float(logp[r, c[0]]) for c in cand_ids[r]] for r in range(b)], greedy


def _prediction(
    row: BenchRow, letter: str | None, scores: list[float] | None, response: str | None
) -> dict[str, Any]:
    pred: dict[str, Any] = {
        "id": row.id,
        "prediction": letter,
        "answer": row.answer,
        "correct": letter == row.answer,
        "scores": None if scores is None else {option_letter(i): s for i, s in enumerate(scores)},
        "category": row.category,
        "duration": row.duration,
    }
    if response is not None:
        pred["response"] = response
    return pred


def evaluate_rows(
    model: Any,
    processor: Any,
    rows: Sequence[BenchRow],
    root: str | os.PathLike,
    config: EvalConfig,
) -> Iterable[list[dict[str, Any]]]:
    """Answer ``rows`` batch by batch; yields per batch one result per row, in order: a prediction, or
    ``{"id", "error"}`` for a row that cannot be processed (missing video, too long, ...)."""
    import torch

    from sparrow.model import ProcessorError
    from sparrow.model.inference import generate, score_options

    sampling = modality_sampling(config.sampling or processor.sampling, config.modality)
    tok = processor.tokenizer
    model.eval()
    for start in range(0, len(rows), config.batch_size):
        chunk = rows[start : start + config.batch_size]
        results: list[dict[str, Any] | None] = [None] * len(chunk)
        samples = []
        for r, row in enumerate(chunk):
            try:
                samples.append(build_sample(row, config.modality, cloze=config.method in CLOZE_METHODS))
            except (RecordError, ValueError) as e:
                samples.append(None)
                results[r] = {"id": row.id, "error": str(e)}
        if config.method == "generate":
            for r, (row, s) in enumerate(zip(chunk, samples, strict=True)):
                if s is None:
                    continue
                try:
                    text = generate(
                        model, processor, s, root, config.max_new_tokens, sampling, config.media_root
                    )
                except (ProcessorError, RecordError, ValueError) as e:
                    results[r] = {"id": row.id, "error": str(e).splitlines()[0]}
                    continue
                results[r] = _prediction(row, parse_answer(text, row.options), None, text)
            yield results  # type: ignore[misc]
            continue
        if config.method in CLOZE_METHODS:
            for r, (row, s) in enumerate(zip(chunk, samples, strict=True)):
                if s is None:
                    continue
                try:
                    sc = score_options(
                        model, processor, s, list(row.options), root, sampling, config.media_root
                    )
                except (ProcessorError, RecordError, ValueError) as e:
                    results[r] = {"id": row.id, "error": str(e).splitlines()[0]}
                    continue
                if config.method == "cloze_norm":
                    sc = [
                        v / max(1, len(tok(o, add_special_tokens=False)["input_ids"]))
                        for v, o in zip(sc, row.options, strict=True)
                    ]
                results[r] = _prediction(row, option_letter(int(np.argmax(sc))), sc, None)
            yield results  # type: ignore[misc]
            continue

        cands = {
            r: letter_candidates(tok, row.options) for r, row in enumerate(chunk) if samples[r] is not None
        }
        cand_ids = {r: [tok(c, add_special_tokens=False)["input_ids"] for c in cs] for r, cs in cands.items()}
        batchable, feats = [], []
        for r, s in enumerate(samples):
            if s is None:
                continue
            if all(len(c) == 1 for c in cand_ids[r]):
                try:
                    feats.append(
                        processor(s, root, sampling=sampling, generation=True, media_root=config.media_root)
                    )
                    batchable.append(r)
                except (ProcessorError, RecordError, ValueError) as e:
                    results[r] = {"id": chunk[r].id, "error": str(e).splitlines()[0]}
        scored: dict[int, list[float]] = {}
        if feats:
            with torch.inference_mode():
                batch_scores, _ = score_batch(model, processor, feats, [cand_ids[r] for r in batchable])
            scored.update(zip(batchable, batch_scores, strict=True))
        for r, s in enumerate(samples):
            if s is None or results[r] is not None or r in scored:
                continue
            try:  # multi-token letters: the reference scorer, one row at a time
                scored[r] = score_options(model, processor, s, cands[r], root, sampling, config.media_root)
            except (ProcessorError, RecordError, ValueError) as e:
                results[r] = {"id": chunk[r].id, "error": str(e).splitlines()[0]}
        for r, sc in scored.items():
            best = int(np.argmax(sc))
            results[r] = _prediction(chunk[r], option_letter(best), sc, None)
        yield results  # type: ignore[misc]


class PartialResults:
    """Per-row results appended as they come (one JSON line each, flushed per batch), so a killed run
    loses at most the batch in flight. A torn last line is ignored on reading."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.done: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(obj, dict) and "id" in obj:
                        self.done[obj["id"]] = obj
        self._f = None

    def add(self, results: Iterable[dict[str, Any]]) -> None:
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = self.path.open("a", encoding="utf-8")
        for r in results:
            self.done[r["id"]] = r
            self._f.write(json.dumps(r, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def run_eval(
    model: Any,
    processor: Any,
    rows: Sequence[BenchRow],
    root: str | os.PathLike,
    config: EvalConfig,
    state_path: str | os.PathLike,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Evaluate with resume: rows already in ``state_path`` are skipped. Returns (predictions, errors) in
    benchmark order; ``on_batch(n)`` is told how many rows each step finished (skipped ones first)."""
    state = PartialResults(state_path)
    todo = [r for r in rows if r.id not in state.done]
    if on_batch and len(rows) > len(todo):
        on_batch(len(rows) - len(todo))
    try:
        for results in evaluate_rows(model, processor, todo, root, config):
            state.add(results)
            if on_batch:
                on_batch(len(results))
    finally:
        state.close()
    preds, errors = [], []
    for row in rows:
        r = state.done[row.id]
        (errors if "error" in r else preds).append(r)
    return preds, errors
