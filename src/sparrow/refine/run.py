"""Running a refinement: the job on an executor, or a dry run that renders the prompts and estimates
their tokens without calling any backend."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack

from sparrow.caption_metrics import TrinityConfig
from sparrow.captions import read_entries
from sparrow.chat.base import estimate_tokens
from sparrow.jobs import JobArgs, JobOptions, run_job
from sparrow.refine.blocks import make_blocks
from sparrow.refine.caption_stage import CaptionJob
from sparrow.refine.collect import RefineSummary
from sparrow.refine.config import RefineConfig
from sparrow.refine.errors import RefineError
from sparrow.refine.job import RefineStage
from sparrow.refine.prompts import PromptTemplate, load_examples, nearest_examples


@dataclass
class DryRun:
    prompts: list[dict[str, Any]] = field(default_factory=list)  # {"video_id", "block", "messages"}
    prompt_tokens: int = 0  # estimated, 4 characters a token
    max_completion_tokens: int = 0  # the most the replies could add
    errors: list[dict[str, Any]] = field(default_factory=list)


def dry_run(transcripts: str | os.PathLike, cfg: RefineConfig, limit: int | None = None) -> DryRun:
    """The rendered prompts of the first ``limit`` videos (frame descriptions need a backend and are
    left out)."""
    cfg.validate()
    template = PromptTemplate.load(cfg.template)
    examples = load_examples(cfg.examples) if cfg.examples else []
    entries = read_entries(transcripts)
    out = DryRun()
    for t in entries[:limit] if limit is not None else entries:
        if isinstance(t, dict):
            out.errors.append(t)
            continue
        for b in make_blocks(t, cfg.max_words):
            shown = (
                nearest_examples(examples, b.render(), cfg.nearest_examples)
                if cfg.nearest_examples
                else examples
            )
            msgs = template.messages(b, (), shown)
            out.prompts.append(
                {
                    "video_id": t.video_id,
                    "block": b.index,
                    "messages": [{"role": m.role, "content": m.text} for m in msgs],
                }
            )
            out.prompt_tokens += sum(estimate_tokens(m.text) for m in msgs)
            out.max_completion_tokens += cfg.max_tokens
    return out


def refine(
    transcripts: str | os.PathLike,
    videos: str | os.PathLike,
    out: str | os.PathLike,
    cfg: RefineConfig | None = None,
    *,
    limit: int | None = None,
    records: str | os.PathLike | None = None,
    reference: str | os.PathLike | None = None,
    trinity: TrinityConfig | None = None,
    **job: Unpack[JobArgs],
) -> RefineSummary:
    """Refine every transcript of ``transcripts`` into ``out`` (resumable; see docs/refine.md); ``job``:
    workers, executor, overwrite, on_progress."""
    cfg = cfg or RefineConfig()
    cfg.validate()
    if not Path(videos).is_dir():
        raise RefineError(f"videos folder not found: {videos}")
    job_spec = CaptionJob(transcripts, videos, out, records, reference, trinity or TrinityConfig(), limit)
    stage = RefineStage(job_spec, cfg)
    return run_job(stage, out, JobOptions(**job))
