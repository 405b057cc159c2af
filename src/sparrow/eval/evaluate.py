"""The evaluation loop: benchmark rows -> Samples under one condition -> a scoring method, batch by batch,
with per-batch results saved so an interrupted run resumes where it stopped and ends with the same
files as an uninterrupted one."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sparrow.eval.bench import BenchRow
from sparrow.eval.conditions import build_sample, condition_sampling, swap_videos
from sparrow.eval.config import CLOZE_METHODS, EvalConfig
from sparrow.eval.scoring import SCORERS, Scorer, attempt
from sparrow.io import iter_jsonl


def evaluate_rows(
    model: Any,
    processor: Any,
    rows: Sequence[BenchRow],
    root: str | os.PathLike,
    config: EvalConfig,
) -> Iterator[list[dict[str, Any]]]:
    """Answer ``rows`` batch by batch; yields per batch one result per row, in order: a prediction, or
    ``{"id", "error"}`` for a row that cannot be processed (missing video, too long, ...). Under
    ``swap`` each prediction also names the ``video_shown``."""
    sampling = condition_sampling(config.sampling or processor.sampling, config.condition)
    scorer = Scorer(model, processor, root, sampling, config.media_root, config.max_new_tokens)
    score = SCORERS[config.method]
    cloze = config.method in CLOZE_METHODS
    swap: dict[str, str] = {}
    if config.condition == "swap":
        swap = config.swap_videos if config.swap_videos is not None else swap_videos(rows, config.swap_seed)
    model.eval()
    for start in range(0, len(rows), config.batch_size):
        chunk = rows[start : start + config.batch_size]
        built = [
            attempt(row, lambda row=row: build_sample(row, config.condition, cloze, swap.get(row.id)))
            for row in chunk
        ]
        ok = [i for i, (_, err) in enumerate(built) if err is None]
        results = [err for _, err in built]
        if ok:
            scored = score(scorer, [chunk[i] for i in ok], [built[i][0] for i in ok])
            for i, result in zip(ok, scored, strict=True):
                results[i] = {**result, "video_shown": swap[chunk[i].id]} if swap else result
        yield results  # type: ignore[misc]


class PartialResults:
    """Per-row results appended as they come (one JSON line each, flushed per batch), so a killed run
    loses at most the batch in flight. A torn last line is ignored on reading."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.done: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for _, obj in iter_jsonl(self.path):
                if isinstance(obj, dict) and "id" in obj:  # a torn line is a LineError: skipped
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
