"""``sparrow synth``: long-context text records -> pseudo-video samples (rendered text frames)."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.ui import UsageError


def synth(
    inputs: list[Path] = typer.Argument(
        ..., help="Input files: JSONL, JSON array (.json) or Parquet.", show_default=False
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (created if missing)."),
    fields: str = typer.Option(
        None,
        "--fields",
        help="Map input keys: context=KEY,question=KEY,answer=KEY[,id=KEY]; dotted keys reach into objects.",
    ),
    unit: str = typer.Option(
        "words", "--unit", help="Segmentation unit: 'words' or 'tokens' (needs --tokenizer)."
    ),
    tokenizer: Path = typer.Option(
        None, "--tokenizer", help="Local tokenizer directory: token units and exact text-token counts."
    ),
    units_per_frame: int = typer.Option(
        115, "--units-per-frame", help="At most this many units per frame (fewer when they do not fit)."
    ),
    max_frames: int = typer.Option(100, "--max-frames", help="Drop (or truncate) samples with more frames."),
    max_tokens: int = typer.Option(
        10_240,
        "--max-tokens",
        help="Token budget: text tokens + tokens-per-frame x frames must not exceed it.",
    ),
    tokens_per_frame: int = typer.Option(96, "--tokens-per-frame", help="Visual tokens a frame costs."),
    truncate: bool = typer.Option(False, "--truncate", help="Keep the first frames of over-limit samples."),
    width: int = typer.Option(448, "--width", help="Frame width in pixels."),
    height: int = typer.Option(448, "--height", help="Frame height in pixels."),
    font_size: int = typer.Option(20, "--font-size", help="Font size in pixels."),
    margin: int = typer.Option(20, "--margin", help="Margin on every side, pixels."),
    font: list[Path] = typer.Option(
        None,
        "--font",
        help="Extra font file (tried before DejaVu / Noto CJK); 'FILE#N' picks a face. Repeatable.",
    ),
    fg: str = typer.Option("#000000", "--fg", help="Text colour (name or #rrggbb)."),
    bg: str = typer.Option("#ffffff", "--bg", help="Background colour (name or #rrggbb)."),
    image_format: str = typer.Option("png", "--image-format", help="Frame image format: png, jpg or webp."),
    quality: int = typer.Option(90, "--quality", help="JPEG/WebP quality (1-100)."),
    png_compress: int = typer.Option(
        3, "--png-compress", help="PNG zlib level 0-9 (1: fastest, 9: smallest)."
    ),
    fmt: list[str] = typer.Option(
        None, "--format", help="Also write this training format: llava, sharegpt or minicpm. Repeatable."
    ),
    source: str = typer.Option(
        None, "--source", help="The samples' 'source' label (default: input file stem)."
    ),
    workers: int = typer.Option(0, "--workers", "-j", help="Worker processes (0: all cores)."),
    limit: int = typer.Option(
        None, "--limit", help="Process only the first N records (resume later without it)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Discard an earlier run's state and frames in --out."
    ),
    executor: str = typer.Option("local", "--executor", help="'local' process pool or 'ray'."),
) -> None:
    """Render long-context text records as pseudo-videos (Sparrow). Resumable: run the same command
    again after an interruption. Writes samples.jsonl, frames/, errors.jsonl and summary.json."""
    from sparrow.jobs import JobError, default_workers
    from sparrow.render import RenderConfig
    from sparrow.synth import SynthConfig, SynthError, parquet_rows, parse_fields, synthesize
    from sparrow.ui import make_progress, summary_table

    try:
        cfg = SynthConfig(
            unit=unit,
            tokenizer=str(tokenizer) if tokenizer else None,
            units_per_frame=units_per_frame,
            max_frames=max_frames,
            max_tokens=max_tokens,
            tokens_per_frame=tokens_per_frame,
            truncate=truncate,
            fields=parse_fields(fields),
            source=source,
            render=RenderConfig(
                width=width,
                height=height,
                font_size=font_size,
                margin=margin,
                fonts=tuple(str(f) for f in font or ()),
                fg=fg,
                bg=bg,
                image_format=image_format.lower().replace("jpeg", "jpg"),
                quality=quality,
                png_compress_level=png_compress,
            ),
        )
        total = None
        if all(p.suffix.lower() in (".parquet", ".pq") for p in inputs):
            rows = [parquet_rows(p) for p in inputs]
            total = sum(r for r in rows if r is not None) if all(r is not None for r in rows) else None
            if total is not None and limit is not None:
                total = min(total, limit)
        n_workers = workers if workers > 0 else default_workers()
        with make_progress() as progress:
            task = progress.add_task("synth", total=total, rate="")
            frames_done = [0]

            def on_result(result, frames: int) -> None:
                frames_done[0] += frames
                progress.update(task, advance=1, rate=f"{frames_done[0]} frames")

            summary = synthesize(
                [str(p) for p in inputs],
                out,
                cfg,
                workers=n_workers,
                formats=tuple(fmt or ()),
                overwrite=overwrite,
                limit=limit,
                executor=executor,
                on_result=on_result,
            )
    except (SynthError, JobError) as e:
        raise UsageError(str(e)) from e
    run = summary.run
    summary_table(
        "sparrow synth",
        {
            "records": summary.records,
            "samples": summary.samples,
            "errors (errors.jsonl)": summary.errors,
            "truncated": summary.truncated,
            "frames": summary.frames,
            "MB written": summary.bytes / 1e6,
            "resumed records": run["resumed_records"],
            "seconds": run["seconds"],
            "frames/s": run["frames_per_second"],
            "workers": n_workers,
            "output": str(out / "samples.jsonl"),
            "frames in": str(out / "frames"),
        },
    )


def register(app: typer.Typer) -> None:
    app.command(name="synth")(synth)
