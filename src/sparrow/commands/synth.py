"""``sparrow synth``: long-context text records -> pseudo-video samples (rendered text frames)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from sparrow.commands import default
from sparrow.commands._jobs import EXECUTOR, WORKERS, job_progress, overwrite_option, resolve_workers
from sparrow.render import RenderConfig
from sparrow.synth.config import SynthConfig
from sparrow.ui import UsageError, err_console


def synth(
    inputs: list[Path] = typer.Argument(
        ..., help="Input files: JSONL, JSON array (.json) or Parquet.", show_default=False
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (created if missing)."),
    fields: str = typer.Option(
        None,
        "--fields",
        help="Map input keys: context=KEY,question=KEY,answer=KEY[,id=KEY]; dotted keys reach into objects. "
        "With --preset: the keys the preset reads (longalpaca: instruction, answer; chat: messages) and id.",
    ),
    preset: str = typer.Option(
        None,
        "--preset",
        help="Split raw records: 'longalpaca' (paper or book and question between markers in 'instruction', "
        "answer in 'output') or 'chat' (ShareGPT / OpenAI turns: context, separator, question).",
    ),
    begin_marker: str = typer.Option(
        None,
        "--begin-marker",
        help="longalpaca: the text right before the context (replaces the built-in ones).",
    ),
    end_marker: str = typer.Option(
        None, "--end-marker", help="longalpaca: the text between the context and the question."
    ),
    separator: str = typer.Option(
        None,
        "--separator",
        help="chat: the text between context and question in the first user turn (default: a blank line).",
    ),
    split_at: str = typer.Option(
        None,
        "--split-at",
        help="chat: split at the 'last' (default), 'first' or 'only' separator ('only': twice is an error).",
    ),
    max_question_words: int = typer.Option(
        default(SynthConfig, "max_question_words"),
        "--max-question-words",
        help="Drop records whose question has N words or more (the paper: 500 for LongAlpaca, the longalpaca "
        "preset's default; 30 for LongQLoRA); 0: no limit.",
    ),
    unit: str = typer.Option(
        default(SynthConfig, "unit"),
        "--unit",
        help="Segmentation unit: 'words' or 'tokens' (needs --tokenizer).",
    ),
    tokenizer: Path = typer.Option(
        None, "--tokenizer", help="Local tokenizer directory: token units and exact text-token counts."
    ),
    units_per_frame: int = typer.Option(
        default(SynthConfig, "units_per_frame"),
        "--units-per-frame",
        help="At most this many units per frame (fewer when they do not fit).",
    ),
    max_frames: int = typer.Option(
        default(SynthConfig, "max_frames"),
        "--max-frames",
        help="Drop (or truncate) samples with more frames.",
    ),
    max_tokens: int = typer.Option(
        default(SynthConfig, "max_tokens"),
        "--max-tokens",
        help="Token budget: text tokens + tokens-per-frame x frames must not exceed it.",
    ),
    tokens_per_frame: int = typer.Option(
        default(SynthConfig, "tokens_per_frame"), "--tokens-per-frame", help="Visual tokens a frame costs."
    ),
    truncate: bool = typer.Option(
        default(SynthConfig, "truncate"), "--truncate", help="Keep the first frames of over-limit samples."
    ),
    width: int = typer.Option(default(RenderConfig, "width"), "--width", help="Frame width in pixels."),
    height: int = typer.Option(default(RenderConfig, "height"), "--height", help="Frame height in pixels."),
    font_size: int = typer.Option(
        default(RenderConfig, "font_size"), "--font-size", help="Font size in pixels."
    ),
    margin: int = typer.Option(
        default(RenderConfig, "margin"), "--margin", help="Margin on every side, pixels."
    ),
    font: list[Path] = typer.Option(
        None,
        "--font",
        help="Extra font file (tried before DejaVu / Noto CJK); 'FILE#N' picks a face. Repeatable.",
    ),
    fg: str = typer.Option(default(RenderConfig, "fg"), "--fg", help="Text colour (name or #rrggbb)."),
    bg: str = typer.Option(default(RenderConfig, "bg"), "--bg", help="Background colour (name or #rrggbb)."),
    image_format: str = typer.Option(
        default(RenderConfig, "image_format"), "--image-format", help="Frame image format: png, jpg or webp."
    ),
    quality: int = typer.Option(
        default(RenderConfig, "quality"), "--quality", help="JPEG/WebP quality (1-100)."
    ),
    png_compress: int = typer.Option(
        default(RenderConfig, "png_compress_level"),
        "--png-compress",
        help="PNG zlib level 0-9 (1: fastest, 9: smallest).",
    ),
    missing_glyphs: str = typer.Option(
        default(RenderConfig, "missing_glyphs"),
        "--missing-glyphs",
        help="A character no font can draw: 'replace' (draw a placeholder box, count it in the sample's "
        "meta) or 'error' (the record goes to errors.jsonl).",
    ),
    fmt: list[str] = typer.Option(
        None, "--format", help="Also write this training format: llava, sharegpt or minicpm. Repeatable."
    ),
    source: str = typer.Option(
        None, "--source", help="The samples' 'source' label (default: input file stem)."
    ),
    workers: int = WORKERS,
    limit: int = typer.Option(
        None, "--limit", help="Process only the first N records (resume later without it)."
    ),
    overwrite: bool = overwrite_option("frames"),
    executor: str = EXECUTOR,
) -> None:
    """Render long-context text records as pseudo-videos (Sparrow). Resumable: run the same command
    again after an interruption. Writes samples.jsonl, frames/, summary.json and, for records that
    could not be rendered, errors.jsonl."""
    from sparrow.jobs import JobError
    from sparrow.synth import SynthError, parse_fields, synthesize
    from sparrow.synth.presets import preset_from_options

    try:
        chosen, fields = preset_from_options(preset, fields, begin_marker, end_marker, separator, split_at)
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
            preset=chosen,
            max_question_words=max_question_words,
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
                missing_glyphs=missing_glyphs,
            ),
        )
        cfg.validate()  # before the progress bar: a bad option is one line, nothing else
        n_workers = resolve_workers(workers)
        with job_progress("synth") as on_progress:
            summary = synthesize(
                [str(p) for p in inputs],
                out,
                cfg,
                workers=n_workers,
                formats=tuple(fmt or ()),
                overwrite=overwrite,
                limit=limit,
                executor=executor,
                on_progress=on_progress,
            )
    except (SynthError, JobError) as e:
        raise UsageError(str(e)) from e
    _report(summary, out, n_workers)


def _report(summary, out: Path, workers: int) -> None:
    from sparrow.ui import summary_table

    run = summary.run
    summary_table(
        "sparrow synth",
        {
            "records": summary.records,
            "samples": summary.samples,
            "errors (errors.jsonl)": summary.errors,
            **{f"  dropped: {k.replace('_', ' ')}": v for k, v in sorted(summary.dropped.items())},
            "truncated": summary.truncated,
            "missing glyphs (placeholders)": summary.missing_glyphs,
            "frames": summary.frames,
            "MB written": summary.bytes / 1e6,
            "resumed records": run["resumed_records"],
            "seconds": run["seconds"],
            "frames/s": run["frames_per_second"],
            "workers": workers,
            "output": str(out / "samples.jsonl"),
            "frames in": str(out / "frames"),
        },
    )
    if summary.missing_glyphs:
        n, k = summary.missing_glyphs, summary.missing_glyph_samples
        err_console.print(
            escape(
                f"note: {n} character{'s' * (n != 1)} no font can draw {'were' if n != 1 else 'was'} drawn "
                f"as placeholder boxes in {k} sample{'s' * (k != 1)} (meta.missing_glyphs); add a font "
                "with --font, or use --missing-glyphs error to send such records to errors.jsonl"
            ),
            highlight=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command(name="synth")(synth)
