"""``sparrow frames``: pre-extract frames of many videos at a fixed fps (parallel, resumable)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from sparrow.commands._jobs import EXECUTOR, WORKERS, overwrite_option, resolve_workers, run_with_progress
from sparrow.commands._options import config_flags, out_option, required_argument, unset_option
from sparrow.ui import UsageError
from sparrow.video.extract import ExtractConfig


@config_flags(ExtractConfig, skip=("size",), flags={"image_format": ("--format",)})
def frames_cmd(
    inputs: list[str] = required_argument(
        "Videos, folders of videos (searched recursively) or .txt lists of video paths (one per line, "
        "relative to the list's folder)."
    ),
    out: Path = out_option("Output folder: manifest.jsonl, frames/, summary.json, errors.jsonl."),
    *,
    cfg: ExtractConfig,  # --fps ... --allow-partial: one option per field
    size: str = unset_option(
        "--size", help="Frame size: 224 (shorter side) or 224x320 (HxW); default native."
    ),
    workers: int = WORKERS,
    overwrite: bool = overwrite_option("frames"),
    executor: str = EXECUTOR,
) -> None:
    """Extract frames of many videos at a fixed fps. Timestamps are exact (the frame shown at each time,
    also for variable frame rates); bad videos go to errors.jsonl and the rest go on. Resumable: run the
    same command again after an interruption; the output is the same for any --workers."""
    from sparrow.commands.sample import parse_size
    from sparrow.ui import summary_table
    from sparrow.video.extract import ExtractError, extract

    n_workers = resolve_workers(workers)
    try:
        cfg = replace(cfg, size=parse_size(size))
    except ExtractError as e:
        raise UsageError(str(e)) from e
    job_args = dict(workers=n_workers, overwrite=overwrite, executor=executor)
    summary = run_with_progress("frames", extract, inputs, out, cfg, errors=(ExtractError,), **job_args)
    summary_table(
        "sparrow frames",
        {
            "videos": summary.videos,
            "ok": summary.ok,
            "errors (errors.jsonl)": summary.failed,
            "partial (truncated files)": summary.partial,
            "resumed": summary.resumed,
            "frames": summary.frames,
            "seconds": summary.seconds,
            "videos/s": summary.videos_per_second,
            "workers": n_workers,
            "manifest": str(out / "manifest.jsonl"),
        },
    )


def register(app: typer.Typer) -> None:
    app.command(name="frames")(frames_cmd)
