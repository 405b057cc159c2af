"""``sparrow refine``: ASR transcripts -> refined captions with an LLM (+ image-LM), as a resumable job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.commands import default
from sparrow.commands._jobs import EXECUTOR, WORKERS, job_progress, overwrite_option, resolve_workers
from sparrow.refine.config import RefineConfig
from sparrow.ui import UsageError


def _d(name: str) -> Any:
    return default(RefineConfig, name)


def refine(
    transcripts: Path = typer.Argument(
        ..., help="HowTo100M caption.json of the transcripts.", show_default=False
    ),
    videos: Path = typer.Option(
        ..., "--videos", help="Folder of the videos (VIDEO_ID.mp4).", show_default=False
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder.", show_default=False),
    backend: str = typer.Option(
        _d("backend"), "--backend", help="hf (local LM), openai (any compatible server), sparrow."
    ),
    model: str = typer.Option(
        None, "--model", help="hf: model folder; openai: model name; sparrow: checkpoint."
    ),
    base_url: str = typer.Option(_d("base_url"), "--base-url", help="openai: the server's /v1 URL."),
    api_key_env: str = typer.Option(
        None, "--api-key-env", help="openai: environment variable holding the key."
    ),
    concurrency: int = typer.Option(_d("concurrency"), "--concurrency", help="openai: requests in flight."),
    retries: int = typer.Option(
        _d("retries"), "--retries", help="openai: retries per request (429, 5xx, timeouts)."
    ),
    timeout: float = typer.Option(_d("timeout"), "--timeout", help="openai: seconds per attempt."),
    batch_size: int = typer.Option(_d("batch_size"), "--batch-size", help="hf: prompts generated together."),
    device: str = typer.Option(_d("device"), "--device", help="hf / sparrow: cpu, cuda, ..."),
    template: str = typer.Option(
        _d("template"), "--template", help="Template name or file ([system]/[user])."
    ),
    examples: Path = typer.Option(None, "--examples", help="JSONL of human-refined examples (few-shot)."),
    max_words: int = typer.Option(_d("max_words"), "--max-words", help="Words per transcript block."),
    describe_frames: bool = typer.Option(
        _d("describe_frames"), "--describe-frames", help="Describe frames with the backend and fuse them in."
    ),
    frame_every: float = typer.Option(
        _d("frame_every"), "--frame-every", help="Seconds between described frames."
    ),
    temperature: float = typer.Option(_d("temperature"), "--temperature", help="0: greedy."),
    max_tokens: int = typer.Option(_d("max_tokens"), "--max-tokens", help="Reply length per block."),
    seed: int = typer.Option(
        _d("seed"), "--seed", help="Seed sent with every request (part of the cache key)."
    ),
    cache: Path = typer.Option(None, "--cache", help="Response cache folder (default: OUT/cache)."),
    records: Path = typer.Option(
        None,
        "--records",
        help="Caption training records JSONL (default OUT/captions.jsonl); paths are relative to it.",
    ),
    reference: Path = typer.Option(
        None, "--reference", help="Ground-truth caption.json for the trinity report."
    ),
    limit: int = typer.Option(None, "--limit", help="Only the first N videos of the file."),
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
    from sparrow.refine.backends.base import BackendError
    from sparrow.refine.captions import CaptionsError
    from sparrow.refine.job import RefineError
    from sparrow.refine.prompts import PromptError
    from sparrow.refine.run import dry_run as render
    from sparrow.refine.run import refine as run
    from sparrow.ui import console, summary_table

    cfg = RefineConfig(
        backend=backend, model=model, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
        timeout=timeout, retries=retries, batch_size=batch_size, device=device, template=template,
        examples=str(examples) if examples else None, max_words=max_words, temperature=temperature,
        max_tokens=max_tokens, seed=seed, describe_frames=describe_frames, frame_every=frame_every,
        cache=str(cache) if cache else None,
    )  # fmt: skip
    try:
        if dry_run:
            _print_dry_run(render(transcripts, cfg, limit))
            return
        with job_progress("refining") as on_progress:
            s = run(
                transcripts, videos, out, cfg, limit=limit, records=records, reference=reference,
                workers=resolve_workers(workers), executor=executor, overwrite=overwrite, on_progress=on_progress,
            )  # fmt: skip
    except (BackendError, CaptionsError, PromptError, RefineError) as e:
        raise UsageError(str(e)) from e
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
