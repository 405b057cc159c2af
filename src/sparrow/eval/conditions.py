"""The three eval *conditions* (Apollo, arXiv 2412.10360): what a model is shown of a benchmark row.

=========  =====================================================  =========================================
condition  what the model sees                                    sampling
=========  =====================================================  =========================================
video      the video and the lettered question                    the checkpoint's (or ``--sampling``)
frame      the centre frame and the lettered question             ``Uniform(1)``, no header, no time prefix
text       the lettered question only: no media, no placeholder   none
=========  =====================================================  =========================================

The question is phrased exactly like training data (``sparrow.mcq.format_mcq_prompt``), so the three
conditions differ only in the pixels that come with it. This module is the one place that says so.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sparrow.eval.bench import BenchRow
from sparrow.mcq import format_mcq_prompt
from sparrow.records import VIDEO_TOKEN, Media, RecordError, Sample
from sparrow.yamlio import apply_overrides

CONDITIONS = ("video", "frame", "text")


def check_condition(condition: str) -> str:
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    return condition


def build_sample(row: BenchRow, condition: str, cloze: bool = False) -> Sample:
    """The native Sample a model sees for ``row`` under ``condition`` (no assistant turn: it is asked).
    ``cloze``: the bare question, without the lettered options (each option is then scored as the reply)."""
    check_condition(condition)
    prompt = row.question.strip() if cloze else format_mcq_prompt(row.question, row.options)
    meta = {"category": row.category, "duration": row.duration, "answer": row.answer}
    if condition == "text":
        return Sample(id=row.id, messages=[{"role": "user", "content": prompt}], meta=meta)
    if not row.video:
        raise RecordError(f"row {row.id!r}: no 'video' for condition {condition!r}")
    return Sample(
        id=row.id,
        messages=[{"role": "user", "content": f"{VIDEO_TOKEN}\n{prompt}"}],
        media=[Media(type="video", path=row.video)],
        meta=meta,
    )


def condition_sampling(base: Any, condition: str) -> Any:
    """The SamplingConfig a condition uses. ``frame``: one frame at the middle of the video
    (``Uniform(1)``) with no duration header and no time prefix — nothing but the picture is added."""
    if check_condition(condition) == "frame":
        return replace(base, strategy="uniform", num_frames=1, min_frames=1, timestamps="none", header=False)
    return base


def parse_sampling_overrides(text: str | None, base: Any) -> Any:
    """``"strategy=uniform,num_frames=16"`` applied over a SamplingConfig (each value typed like its field)."""
    return apply_overrides(base, text, "sampling")
