"""The four eval *conditions* (Apollo, arXiv 2412.10360, plus a swapped-video control): what a model is
shown of a benchmark row.

=========  =====================================================  =========================================
condition  what the model sees                                    sampling
=========  =====================================================  =========================================
video      the video and the lettered question                    the checkpoint's (or ``--sampling``)
frame      the centre frame and the lettered question             ``Uniform(1)``, no header, no time prefix
text       the lettered question only: no media, no placeholder   none
swap       *another* question's video and the lettered question   as ``video``
=========  =====================================================  =========================================

The question is phrased exactly like training data (``sparrow.mcq.format_mcq_prompt``), so the
conditions differ only in the pixels that come with it. ``swap`` asks every question with the video of
another row of the same benchmark (``swap_videos``: a fixed, seeded derangement), so the prompt, the
number of visual tokens and the kind of pixels stay those of real inputs; only the link between the
video and the question is broken. A model that reads the video loses accuracy under ``swap``; one that
answers from the question alone scores the same (video − swap is the *video reliance*). This module is
the one place that says so.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sparrow.eval.bench import BenchRow
from sparrow.mcq import format_mcq_prompt
from sparrow.records import VIDEO_TOKEN, Media, RecordError, Sample
from sparrow.yamlio import apply_overrides

CONDITIONS = ("video", "frame", "text", "swap")
# The figure each non-video condition's metrics.json holds: video accuracy minus this condition's, paired
# over the same questions (``sparrow.eval.metrics.paired_difference``).
PAIRED_KEYS = {"swap": "video_reliance", "text": "video_minus_text", "frame": "video_minus_frame"}


def check_condition(condition: str) -> str:
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    return condition


def swap_videos(rows: Sequence[BenchRow], seed: int = 0) -> dict[str, str]:
    """For every row with a video, the video of another row (row id -> video path): a seeded derangement
    of the rows that gives each question a *different video file* whenever that is possible (no video
    holds more than half of the rows), and otherwise at least a different row. Each video is shown as
    often as in the benchmark, so the swapped inputs are distributed like the real ones.

    How: rows are grouped by video (groups and rows within them shuffled by ``seed``), laid out group
    after group, and each row takes the video of the row ``m`` places further on (cyclically), ``m`` the
    largest group: a shift at least as long as any group never lands in the row's own group."""
    with_video = [r for r in rows if r.video]
    if len(with_video) < 2:
        raise ValueError("the swap condition needs at least two questions with a video")
    rng = random.Random(f"sparrow-swap/{seed}")
    groups: dict[str, list[BenchRow]] = {}
    for r in with_video:
        groups.setdefault(str(r.video), []).append(r)
    keys = list(groups)
    rng.shuffle(keys)
    order: list[BenchRow] = []
    for k in keys:
        members = list(groups[k])
        rng.shuffle(members)
        order += members
    n, largest = len(order), max(len(g) for g in groups.values())
    shift = largest if 2 * largest <= n else n // 2  # no video-disjoint derangement exists in the latter
    return {r.id: str(order[(i + shift) % n].video) for i, r in enumerate(order)}


def build_sample(row: BenchRow, condition: str, cloze: bool = False, swap_video: str | None = None) -> Sample:
    """The native Sample a model sees for ``row`` under ``condition`` (no assistant turn: it is asked).
    ``cloze``: the bare question, without the lettered options (each option is then scored as the reply).
    ``swap_video``: the video shown under ``swap`` (from ``swap_videos`` over the whole benchmark)."""
    check_condition(condition)
    prompt = row.question.strip() if cloze else format_mcq_prompt(row.question, row.options)
    meta = {"category": row.category, "duration": row.duration, "answer": row.answer}
    if condition == "text":
        return Sample(id=row.id, messages=[{"role": "user", "content": prompt}], meta=meta)
    if not row.video:
        raise RecordError(f"row {row.id!r}: no 'video' for condition {condition!r}")
    video = row.video
    if condition == "swap":
        if not swap_video:
            raise RecordError(f"row {row.id!r}: no other video to show under 'swap' (see swap_videos)")
        video = swap_video
    return Sample(
        id=row.id,
        messages=[{"role": "user", "content": f"{VIDEO_TOKEN}\n{prompt}"}],
        media=[Media(type="video", path=video)],
        meta=meta,
    )


def condition_sampling(base: Any, condition: str) -> Any:
    """The SamplingConfig a condition uses. ``frame``: one frame at the middle of the video
    (``Uniform(1)``) with no duration header and no time prefix — nothing but the picture is added.
    ``swap`` samples its (other) video exactly as ``video`` does."""
    if check_condition(condition) == "frame":
        return replace(base, strategy="uniform", num_frames=1, min_frames=1, timestamps="none", header=False)
    return base


def parse_conditions(text: str) -> tuple[str, ...]:
    """``"video,swap"`` -> ``("video", "swap")``; ``"all"`` -> every condition. Raises ValueError."""
    if text.strip() == "all":
        return CONDITIONS
    names = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    bad = [c for c in names if c not in CONDITIONS]
    if bad or not names:
        raise ValueError(f"condition must be 'all' or some of {', '.join(CONDITIONS)} (got {text!r})")
    return names


def parse_sampling_overrides(text: str | None, base: Any) -> Any:
    """``"strategy=uniform,num_frames=16"`` applied over a SamplingConfig (each value typed like its field)."""
    return apply_overrides(base, text, "sampling")
