"""``sparrow frames``: pre-extract frames of many videos at a fixed fps (parallel, resumable)."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.ui import UsageError


def frames_cmd(
    inputs: list[str] = typer.Argument(
        ...,
        help="Videos, folders of videos (searched recursively) or .txt lists of video paths (one per line, "
        "relative to the list's folder).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: manifest.jsonl, frames/, errors.jsonl."
    ),
    fps: float = typer.Option(
        1.0, "--fps", help="Frames per second: the frames shown at 0, 1/fps, 2/fps, ... s."
    ),
    max_frames: int = typer.Option(
        None, "--max-frames", help="At most this many frames per video (evenly thinned)."
    ),
    size: str = typer.Option(
        None, "--size", help="Frame size: 224 (shorter side) or 224x320 (HxW); default native."
    ),
    image_format: str = typer.Option("jpg", "--format", help="Image format: jpg or png."),
    quality: int = typer.Option(90, "--quality", help="JPEG quality (1-100)."),
    workers: int = typer.Option(0, "--workers", "-j", help="Parallel processes (0 = one per CPU core)."),
    allow_partial: bool = typer.Option(
        False,
        "--allow-partial",
        help="Keep the decodable frames of truncated videos instead of listing them as errors.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Discard an earlier run's state and frames in --out."
    ),
    executor: str = typer.Option("local", "--executor", help="'local' process pool or 'ray'."),
) -> None:
    """Extract frames of many videos at a fixed fps. Timestamps are exact (the frame shown at each time,
    also for variable frame rates); bad videos go to errors.jsonl and the rest go on. Resumable: run the
    same command again after an interruption; the output is the same for any --workers."""
    from sparrow.commands.sample import parse_size
    from sparrow.jobs import JobError, default_workers
    from sparrow.ui import make_progress, summary_table
    from sparrow.video.extract import ExtractConfig, ExtractError, expand_inputs, extract

    n_workers = workers if workers > 0 else default_workers()
    try:
        cfg = ExtractConfig(
            fps=fps,
            max_frames=max_frames,
            size=parse_size(size),
            image_format=image_format,
            quality=quality,
            allow_partial=allow_partial,
        )
        total = sum(1 for _ in expand_inputs(inputs))
        with make_progress() as progress:
            task = progress.add_task("frames", total=total, rate="")
            done = [0, 0]

            def on_result(r) -> None:
                done[0] += 1
                done[1] += len(r.value["frames"]) if r.ok and r.value else 0
                progress.update(task, advance=1, rate=f"{done[1]} frames")

            summary = extract(
                inputs,
                out,
                cfg,
                workers=n_workers,
                overwrite=overwrite,
                executor=executor,
                on_result=on_result,
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
