"""``sparrow synth``: long-context text records -> pseudo-video samples (rendered text frames)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape

from sparrow.commands._jobs import EXECUTOR, WORKERS, overwrite_option, resolve_workers, run_with_progress
from sparrow.commands._options import config_flags, out_option, required_argument, unset_option
from sparrow.render import RenderConfig
from sparrow.synth.config import SynthConfig
from sparrow.ui import UsageError, err_console


@config_flags(SynthConfig, skip=("fields", "render", "preset"), paths=("tokenizer",))
@config_flags(
    RenderConfig,
    param="render",
    skip=("line_height", "fonts", "default_fonts"),
    flags={"png_compress_level": ("--png-compress",)},
)
def synth(
    inputs: list[Path] = required_argument("Input files: JSONL, JSON array (.json) or Parquet."),
    out: Path = out_option("Output directory (created if missing)."),
    fields: str = unset_option(
        "--fields",
        help="Map input keys: context=KEY,question=KEY,answer=KEY[,id=KEY]; dotted keys reach into objects. "
        "With --preset: the keys the preset reads (longalpaca: instruction, answer; chat: messages) and id.",
    ),
    preset: str = unset_option(
        "--preset",
        help="Split raw records: 'longalpaca' (paper or book and question between markers in 'instruction', "
        "answer in 'output') or 'chat' (ShareGPT / OpenAI turns: context, separator, question).",
    ),
    begin_marker: str = unset_option(
        "--begin-marker", help="longalpaca: the text right before the context (replaces the built-in ones)."
    ),
    end_marker: str = unset_option(
        "--end-marker", help="longalpaca: the text between the context and the question."
    ),
    separator: str = unset_option(
        "--separator",
        help="chat: the text between context and question in the first user turn (default: a blank line).",
    ),
    split_at: str = unset_option(
        "--split-at",
        help="chat: split at the 'last' (default), 'first' or 'only' separator ('only': twice is an error).",
    ),
    *,
    cfg: SynthConfig,  # --unit ... --max-question-words: one option per field
    render: RenderConfig,  # --width ... --missing-glyphs: one option per field
    font: list[Path] = unset_option(
        "--font", help="Extra font file (tried before DejaVu / Noto CJK); 'FILE#N' picks a face. Repeatable."
    ),
    fmt: list[str] = unset_option(
        "--format", help="Also write this training format: llava, sharegpt or minicpm. Repeatable."
    ),
    workers: int = WORKERS,
    limit: int = unset_option("--limit", help="Process only the first N records (resume later without it)."),
    overwrite: bool = overwrite_option("frames"),
    executor: str = EXECUTOR,
) -> None:
    """Render long-context text records as pseudo-videos (Sparrow). Resumable: run the same command
    again after an interruption. Writes samples.jsonl, frames/, summary.json and, for records that
    could not be rendered, errors.jsonl. Exits non-zero when no sample was made or an input could not
    be read to its end."""
    from sparrow.synth import SynthError, parse_fields, synthesize
    from sparrow.synth.presets import preset_from_options

    try:
        chosen, fields = preset_from_options(preset, fields, begin_marker, end_marker, separator, split_at)
        render = replace(
            render,
            fonts=tuple(str(f) for f in font or ()),
            image_format=render.image_format.lower().replace("jpeg", "jpg"),
        )
        cfg = replace(cfg, fields=parse_fields(fields), preset=chosen, render=render)
        cfg.validate()  # before the progress bar: a bad option is one line, nothing else
    except SynthError as e:
        raise UsageError(str(e)) from e
    n_workers = resolve_workers(workers)
    job_args = dict(
        workers=n_workers, formats=tuple(fmt or ()), overwrite=overwrite, limit=limit, executor=executor
    )
    summary = run_with_progress(
        "synth", synthesize, [str(p) for p in inputs], out, cfg, errors=(SynthError,), **job_args
    )
    _report(summary, out, n_workers)
    problem = summary.problem()
    if problem is not None:
        raise UsageError(problem)


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
            **{f"  looks like --preset {k}": v for k, v in sorted(summary.looks_like.items())},
            **{
                f"unused chat turns: {k.replace('_', ' ')}": v
                for k, v in sorted(summary.unused_turns.items())
            },
            **{
                f"not read to the end: {u['input']}": f"after element {u['element'] - 1}"
                for u in summary.unread
            },
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
