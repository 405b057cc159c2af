"""``sparrow refine``: ASR transcripts -> refined captions with an LLM (+ image-LM), as a resumable job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.commands._jobs import EXECUTOR, WORKERS, overwrite_option, resolve_workers, run_with_progress
from sparrow.commands._options import config_flags, out_option, required_argument, unset_option
from sparrow.refine.config import RefineConfig
from sparrow.ui import UsageError


@config_flags(RefineConfig, skip=("caption_seconds", "top_p"), paths=("examples", "cache"))
def refine(
    transcripts: Path = required_argument("HowTo100M caption.json of the transcripts."),
    videos: Path = typer.Option(
        ..., "--videos", help="Folder of the videos (VIDEO_ID.mp4).", show_default=False
    ),
    out: Path = out_option("Output folder."),
    *,
    cfg: RefineConfig,  # --backend ... --cache: one option per field
    records: Path = unset_option(
        "--records",
        help="Caption training records JSONL (default OUT/captions.jsonl); paths are relative to it.",
    ),
    reference: Path = unset_option("--reference", help="Ground-truth caption.json for the trinity report."),
    limit: int = unset_option("--limit", help="Only the first N videos of the file."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the rendered prompts and a token estimate; call nothing."
    ),
    workers: int = WORKERS,
    executor: str = EXECUTOR,
    overwrite: bool = overwrite_option("refined outputs"),
) -> None:
    """Group each video's transcript lines into timed blocks, ask the backend for short timed captions,
    parse them, and write caption.json, caption training records, errors.jsonl, ledger.json,
    trinity.json and summary.json into OUT. Re-running resumes; identical requests come from the cache.
    Exits non-zero when no caption was made."""
    from sparrow.captions import CaptionsError
    from sparrow.chat.base import BackendError
    from sparrow.refine.errors import PromptError, RefineError
    from sparrow.refine.run import dry_run as render
    from sparrow.refine.run import refine as run
    from sparrow.ui import console, summary_table

    errors = (BackendError, CaptionsError, PromptError, RefineError)
    if dry_run:
        try:
            _print_dry_run(render(transcripts, cfg, limit))
        except errors as e:
            raise UsageError(str(e)) from e
        return
    job_args = dict(workers=resolve_workers(workers), executor=executor, overwrite=overwrite)
    s = run_with_progress(
        "refining", run, transcripts, videos, out, cfg, errors=errors, limit=limit, records=records,
        reference=reference, **job_args,
    )  # fmt: skip
    rows = {
        "videos": s.videos,
        "refined": s.ok,
        "failed": s.failed,
        "resumed": s.resumed,
        "captions": s.captions,
        "dropped captions": s.dropped,
        "failed blocks (retried on re-run)": s.failed_blocks,
    }
    rows.update({f"ledger: {k}": v for k, v in s.ledger.items()})
    rows.update({f"quality: {k}": v for k, v in (s.quality or {}).items()})
    summary_table("sparrow refine", rows)
    if s.failed:
        console.print(f"{s.failed} videos failed: see {out / 'errors.jsonl'}", markup=False)
    if s.failed_blocks:
        console.print(
            f"{s.failed_blocks} requests failed (dropped.jsonl); run the same command again to retry them",
            markup=False,
        )
    if not s.captions:
        where = f"any of the {s.videos} videos (errors.jsonl, dropped.jsonl)" if s.videos else "an empty file"
        raise UsageError(f"no caption was made for {where}")


def _print_dry_run(dr: Any) -> None:
    from sparrow.ui import console, summary_table

    for p in dr.prompts:
        console.rule(f"{p['video_id']} block {p['block']}")
        for m in p["messages"]:
            console.print(f"[{m['role']}]\n{m['content']}", markup=False, highlight=False)
    summary_table(
        "sparrow refine --dry-run",
        {
            "requests": len(dr.prompts),
            "prompt tokens (est.)": dr.prompt_tokens,
            "completion tokens (at most)": dr.max_completion_tokens,
            "malformed entries": len(dr.errors),
        },
    )


def register(app: typer.Typer) -> None:
    app.command(name="refine")(refine)
