"""``sparrow refine``: ASR transcripts -> refined captions with an LLM (+ image-LM), as a resumable job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.commands._jobs import EXECUTOR, WORKERS, overwrite_option, resolve_workers, run_with_progress
from sparrow.commands._options import config_from, config_options, out_option, required_argument, unset_option
from sparrow.refine.config import RefineConfig
from sparrow.ui import UsageError

_opt = config_options(RefineConfig)


def refine(
    transcripts: Path = required_argument("HowTo100M caption.json of the transcripts."),
    videos: Path = typer.Option(
        ..., "--videos", help="Folder of the videos (VIDEO_ID.mp4).", show_default=False
    ),
    out: Path = out_option("Output folder."),
    backend: str = _opt("backend", help="hf (local LM), openai (any compatible server), sparrow."),
    model: str = _opt("model", help="hf: model folder; openai: model name; sparrow: checkpoint."),
    base_url: str = _opt("base_url", help="openai: the server's /v1 URL."),
    api_key_env: str = _opt("api_key_env", help="openai: environment variable holding the key."),
    concurrency: int = _opt("concurrency", help="openai: requests in flight."),
    retries: int = _opt("retries", help="openai: retries per request (429, 5xx, timeouts)."),
    timeout: float = _opt("timeout", help="openai: seconds per attempt."),
    batch_size: int = _opt("batch_size", help="hf: prompts generated together."),
    device: str = _opt("device", help="hf / sparrow: cpu, cuda, ..."),
    template: str = _opt("template", help="Template name or file (with \\[system] and \\[user] sections)."),
    examples: Path = _opt("examples", help="JSONL of human-refined examples (few-shot)."),
    max_words: int = _opt("max_words", help="Words per transcript block."),
    describe_frames: bool = _opt(
        "describe_frames", help="Describe frames with the backend and fuse them in."
    ),
    frame_every: float = _opt("frame_every", help="Seconds between described frames."),
    see_video: bool = _opt(
        "see_video",
        help="Send each block's video segment with its prompt (sparrow, or openai to a video server).",
    ),
    temperature: float = _opt("temperature", help="0: greedy."),
    max_tokens: int = _opt("max_tokens", help="Reply length per block."),
    seed: int = _opt("seed", help="Seed sent with every request (part of the cache key)."),
    cache: Path = _opt("cache", help="Response cache folder (default: OUT/cache)."),
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
    trinity.json and summary.json into OUT. Re-running resumes; identical requests come from the cache."""
    options = locals()  # the flags by name, before any other local: config_from picks the fields
    from sparrow.refine.errors import BackendError, CaptionsError, PromptError, RefineError
    from sparrow.refine.run import dry_run as render
    from sparrow.refine.run import refine as run
    from sparrow.ui import console, summary_table

    errors = (BackendError, CaptionsError, PromptError, RefineError)
    cfg = config_from(
        RefineConfig,
        options,
        examples=str(examples) if examples else None,
        cache=str(cache) if cache else None,
    )
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
    }
    rows.update({f"ledger: {k}": v for k, v in s.ledger.items()})
    rows.update({f"quality: {k}": v for k, v in (s.quality or {}).items()})
    summary_table("sparrow refine", rows)
    if s.failed:
        console.print(f"{s.failed} videos failed: see {out / 'errors.jsonl'}", markup=False)


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
