"""``sparrow frames``: pre-extract frames of many videos at a fixed fps (parallel, resumable)."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.commands import default
from sparrow.commands._jobs import EXECUTOR, WORKERS, job_progress, overwrite_option, resolve_workers
from sparrow.ui import UsageError
from sparrow.video.extract import ExtractConfig


def frames_cmd(
    inputs: list[str] = typer.Argument(
        ...,
        help="Videos, folders of videos (searched recursively) or .txt lists of video paths (one per line, "
        "relative to the list's folder).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: manifest.jsonl, frames/, summary.json, errors.jsonl."
    ),
    fps: float = typer.Option(
        default(ExtractConfig, "fps"),
        "--fps",
        help="Frames per second: the frames shown at 0, 1/fps, 2/fps, ... s.",
    ),
    max_frames: int = typer.Option(
        default(ExtractConfig, "max_frames"),
        "--max-frames",
        help="At most this many frames per video (evenly thinned).",
    ),
    size: str = typer.Option(
        None, "--size", help="Frame size: 224 (shorter side) or 224x320 (HxW); default native."
    ),
    image_format: str = typer.Option(
        default(ExtractConfig, "image_format"), "--format", help="Image format: jpg or png."
    ),
    quality: int = typer.Option(default(ExtractConfig, "quality"), "--quality", help="JPEG quality (1-100)."),
    workers: int = WORKERS,
    allow_partial: bool = typer.Option(
        default(ExtractConfig, "allow_partial"),
        "--allow-partial",
        help="Keep the decodable frames of truncated videos instead of listing them as errors.",
    ),
    overwrite: bool = overwrite_option("frames"),
    executor: str = EXECUTOR,
) -> None:
    """Extract frames of many videos at a fixed fps. Timestamps are exact (the frame shown at each time,
    also for variable frame rates); bad videos go to errors.jsonl and the rest go on. Resumable: run the
    same command again after an interruption; the output is the same for any --workers."""
    from sparrow.commands.sample import parse_size
    from sparrow.jobs import JobError
    from sparrow.ui import summary_table
    from sparrow.video.extract import ExtractError, extract

    n_workers = resolve_workers(workers)
    try:
        cfg = ExtractConfig(
            fps=fps,
            max_frames=max_frames,
            size=parse_size(size),
            image_format=image_format,
            quality=quality,
            allow_partial=allow_partial,
        )
        with job_progress("frames") as on_progress:
            summary = extract(
                inputs,
                out,
                cfg,
                workers=n_workers,
                overwrite=overwrite,
                executor=executor,
                on_progress=on_progress,
            )
    except (ExtractError, JobError) as e:
        raise UsageError(str(e)) from e
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
