"""The four ways to answer a multiple-choice question, one function each, sharing one error path.

- ``loglik`` (default): log-likelihood of each option's letter as the first token(s) of the reply, after
  the lettered prompt — the training target ``"B. red"`` starts with it;
- ``generate``: greedy reply, parsed (``sparrow.eval.answers.parse_answer``);
- ``cloze``: the question alone, each option's text scored as the reply (lm-eval-harness style), which
  needs no letter binding and so suits very small models;
- ``cloze_norm``: the same, each option's summed log-prob divided by its number of tokens (lm-eval's
  acc_norm idea). A summed score favours short options: an untrained model scores ~0.33, not 0.25, on
  the world's benchmark.

Each method takes a batch of rows and their Samples and returns one result per row, in order: a
prediction, or ``{"id", "error"}`` (``row_error``) for a row that cannot be processed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from sparrow.eval.answers import parse_answer
from sparrow.eval.bench import BenchRow
from sparrow.mcq import format_mcq_answer, option_letter
from sparrow.model import ProcessorError
from sparrow.model.collate import pad_left, visual_inputs
from sparrow.model.inference import generate, score_options
from sparrow.records import RecordError, Sample

# What one row can fail with (missing video, prompt too long, ...); anything else is a bug and raises.
ROW_ERRORS = (ProcessorError, RecordError, ValueError)

T = TypeVar("T")


def row_error(row_id: str, exc: BaseException) -> dict[str, Any]:
    return {"id": row_id, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}


def attempt(row: BenchRow, fn: Callable[[], T]) -> tuple[T | None, dict[str, Any] | None]:
    """``(value, None)``, or ``(None, error result)`` when the row fails: the one error path."""
    try:
        return fn(), None
    except ROW_ERRORS as e:
        return None, row_error(row.id, e)


@dataclass
class Scorer:
    """What every method needs besides the rows: the model and how its inputs are built."""

    model: Any
    processor: Any
    root: str | os.PathLike
    sampling: Any
    media_root: str | None = None
    max_new_tokens: int = 16

    def features(self, sample: Sample) -> dict[str, Any]:
        return self.processor(
            sample, self.root, sampling=self.sampling, generation=True, media_root=self.media_root
        )

    def option_scores(self, sample: Sample, candidates: list[str]) -> list[float]:
        return score_options(
            self.model, self.processor, sample, candidates, self.root, self.sampling, self.media_root
        )

    def reply(self, sample: Sample) -> str:
        return generate(
            self.model, self.processor, sample, self.root, self.max_new_tokens, self.sampling, self.media_root
        )


def prediction(
    row: BenchRow, letter: str | None, scores: list[float] | None, response: str | None = None
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


def _argmax(row: BenchRow, scores: list[float]) -> dict[str, Any]:
    return prediction(row, option_letter(int(np.argmax(scores))), scores)


def _per_row(
    rows: Sequence[BenchRow], samples: Sequence[Sample], fn: Callable[[BenchRow, Sample], dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for row, sample in zip(rows, samples, strict=True):
        result, err = attempt(row, lambda row=row, sample=sample: fn(row, sample))
        out.append(err or result)
    return out


# -------------------------------------------------------------------------------------- the methods


def score_generate(s: Scorer, rows: Sequence[BenchRow], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    def one(row: BenchRow, sample: Sample) -> dict[str, Any]:
        text = s.reply(sample)
        return prediction(row, parse_answer(text, row.options), None, text)

    return _per_row(rows, samples, one)


def score_cloze(s: Scorer, rows: Sequence[BenchRow], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    return _per_row(rows, samples, lambda row, sample: _argmax(row, s.option_scores(sample, row.options)))


def score_cloze_norm(s: Scorer, rows: Sequence[BenchRow], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    tok = s.processor.tokenizer

    def one(row: BenchRow, sample: Sample) -> dict[str, Any]:
        sums = s.option_scores(sample, row.options)
        lengths = [max(1, len(tok(o, add_special_tokens=False)["input_ids"])) for o in row.options]
        return _argmax(row, [v / n for v, n in zip(sums, lengths, strict=True)])

    return _per_row(rows, samples, one)


def score_loglik(s: Scorer, rows: Sequence[BenchRow], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Rows whose letters are one token each share one left-padded forward pass; the others (a tokenizer
    that merges letters with what follows) go through the reference scorer one at a time."""
    tok = s.processor.tokenizer
    cands = [letter_candidates(tok, row.options) for row in rows]
    cand_ids = [[tok(c, add_special_tokens=False)["input_ids"] for c in cs] for cs in cands]
    results: dict[int, dict[str, Any]] = {}
    feats: dict[int, dict[str, Any]] = {}
    for i, ids in enumerate(cand_ids):
        if all(len(c) == 1 for c in ids):
            f, err = attempt(rows[i], lambda i=i: s.features(samples[i]))
            if err:
                results[i] = err
            else:
                feats[i] = f
    if feats:
        with torch.inference_mode():
            batch, _ = score_batch(s.model, s.processor, list(feats.values()), [cand_ids[i] for i in feats])
        results.update({i: _argmax(rows[i], sc) for i, sc in zip(feats, batch, strict=True)})
    for i in range(len(rows)):
        if i not in results:
            sc, err = attempt(rows[i], lambda i=i: s.option_scores(samples[i], cands[i]))
            results[i] = err or _argmax(rows[i], sc)
    return [results[i] for i in range(len(rows))]


SCORERS: dict[str, Callable[[Scorer, Sequence[BenchRow], Sequence[Sample]], list[dict[str, Any]]]] = {
    "loglik": score_loglik,
    "generate": score_generate,
    "cloze": score_cloze,
    "cloze_norm": score_cloze_norm,
}


# --------------------------------------------------------------------------------- letter scoring


def letter_candidates(tokenizer: Any, options: Sequence[str]) -> list[str]:
    """Per option, the text of the first token(s) of its training reply that hold the letter.

    A BPE tokenizer may merge ``"B."`` into one token; scoring the bare ``"B"`` would then ask for a
    token the model never produced first. Scoring the reply's own leading token(s) matches training."""
    out = []
    for i in range(len(options)):
        ids = tokenizer(format_mcq_answer(list(options), i), add_special_tokens=False)["input_ids"]
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
    Prompts are left-padded so every row's last position is its own next-token prediction."""
    device = model.device
    ids, mask, pos = pad_left([f["input_ids"] for f in feats], processor.pad_token_id)
    visual = visual_inputs(feats)
    pix = visual["pixel_values"]
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=pos.to(device),
        pixel_values=None if pix is None else pix.to(device),
        group_sizes=visual["group_sizes"],
        logits_to_keep=1,
    )
    logp = F.log_softmax(out.logits[:, -1].float(), dim=-1).cpu()
    greedy = logp.argmax(-1).tolist()
    return [[float(logp[r, c[0]]) for c in cand_ids[r]] for r in range(len(feats))], greedy
