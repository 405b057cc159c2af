"""Benchmark rows: the multiple-choice questions ``sparrow world`` writes (any JSONL of the same shape)::

{"id", "video", "question", "options": [...], "answer": "B", "category", "duration", ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sparrow.io import LineError, iter_jsonl
from sparrow.mcq import LETTERS, letter_index, option_letter
from sparrow.records import RecordError


@dataclass
class BenchRow:
    id: str
    video: str | None
    question: str
    options: list[str]
    answer_index: int
    category: str | None = None
    duration: float | None = None

    @property
    def answer(self) -> str:
        return option_letter(self.answer_index)


def _answer_index(rid: str, obj: dict[str, Any], n_options: int) -> int:
    ans = obj.get("answer", obj.get("answer_index"))
    try:
        idx = ans if isinstance(ans, int) and not isinstance(ans, bool) else letter_index(str(ans))
    except ValueError:
        raise RecordError(f"row {rid!r}: 'answer' must be an option letter, got {ans!r}") from None
    if not 0 <= idx < n_options:
        raise RecordError(f"row {rid!r}: answer {ans!r} is not one of the {n_options} options")
    return idx


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
    idx = _answer_index(rid, obj, len(opts))
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
