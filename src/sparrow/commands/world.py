"""``sparrow world``: generate the procedural video-QA world (Sparrow's embedded default data)."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.commands import default
from sparrow.commands._jobs import EXECUTOR, WORKERS, overwrite_option, resolve_workers, run_with_progress
from sparrow.commands._options import out_option, unset_option
from sparrow.ui import UsageError
from sparrow.world.config import WorldConfig

# World flags default to None: a value comes from the flag, else the --config file, else the preset.
_SEED = default(WorldConfig, "seed")
_PRESET = default(WorldConfig, "preset")


def _split_counts(text: str | None, flag: str) -> dict[str, int] | None:
    """``"70,15,15"`` -> {"train": 70, "val": 15, "test": 15}."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise UsageError(f"{flag} takes three counts TRAIN,VAL,TEST, e.g. 70,15,15 (got {text!r})")
    return dict(zip(("train", "val", "test"), (int(p) for p in parts), strict=True))


def world(
    out: Path = out_option("Output directory (created if missing)."),
    seed: int = unset_option(
        "--seed", help=f"Random seed (default {_SEED}): same seed and settings give byte-identical output."
    ),
    preset: str = unset_option(
        "--preset", help=f"Size: tiny (the demo's, < 1 min), small or medium; default {_PRESET}."
    ),
    config: Path = unset_option(
        "--config", help="YAML file of world settings (field names of WorldConfig); flags override it."
    ),
    videos: str = unset_option("--videos", help="Videos per split as TRAIN,VAL,TEST, e.g. 70,15,15."),
    long_videos: str = unset_option(
        "--long-videos", help="How many of each split's videos are long (minutes), TRAIN,VAL,TEST."
    ),
    size: int = unset_option(
        "--size", help=f"Frame side in pixels (default {default(WorldConfig, 'size')})."
    ),
    phrasing: str = unset_option(
        "--phrasing", help="'templates' (one wording per question type) or 'paraphrases' (many)."
    ),
    text_answerable: float = unset_option(
        "--text-answerable", help="Share of questions whose options give the answer away (0-1)."
    ),
    transcript_noise: float = unset_option(
        "--transcript-noise", help="Per-line probability of an ASR-like error in caption.json (0-1)."
    ),
    workers: int = WORKERS,
    executor: str = EXECUTOR,
    overwrite: bool = overwrite_option("videos"),
) -> None:
    """Generate the procedural world: MP4 videos of moving shapes and words, multiple-choice questions
    (7 categories) with evidence and curation ground truth, benchmarks, captions, text records, noisy
    transcripts and a text corpus for `sparrow synth`. Resumable: run the same command again."""
    from sparrow.ui import summary_table
    from sparrow.world.config import WorldError, preset_config
    from sparrow.world.generate import generate_world
    from sparrow.yamlio import load_yaml

    settings: dict = {}
    if config is not None:
        loaded = load_yaml(config, "--config", UsageError) or {}
        if not isinstance(loaded, dict):
            raise UsageError(f"--config {config} must hold a mapping of world settings")
        settings.update(loaded)
    # flag > --config file > default
    preset = preset if preset is not None else settings.pop("preset", _PRESET)
    seed = seed if seed is not None else settings.pop("seed", _SEED)
    settings.pop("preset", None)
    settings.pop("seed", None)
    flags = {
        "videos": _split_counts(videos, "--videos"),
        "long_videos": _split_counts(long_videos, "--long-videos"),
        "size": size,
        "phrasing": phrasing,
        "text_answerable": text_answerable,
        "transcript_noise": transcript_noise,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    try:
        cfg = preset_config(preset, int(seed), **settings)
    except TypeError as e:
        raise UsageError(f"unknown world setting: {e}") from e
    except WorldError as e:
        raise UsageError(str(e)) from e
    n_workers = resolve_workers(workers)
    job_args = dict(config=cfg, workers=n_workers, executor=executor, overwrite=overwrite)
    summary = run_with_progress("world videos", generate_world, out, errors=(WorldError,), **job_args)
    rows = {
        "videos": summary.videos,
        "rendered / resumed / failed": f"{summary.rendered} / {summary.resumed} / {summary.failed}",
        "frames": summary.frames,
    }
    rows.update({f"{split} questions": n for split, n in summary.questions.items()})
    rows.update({f"  {cat}": n for cat, n in summary.categories.items()})
    rows.update(
        {
            "captions (train)": summary.captions,
            "text records (train)": summary.text_records,
            "corpus rows": summary.corpus_rows,
            "seconds": summary.seconds,
            "workers": n_workers,
            "output": str(out),
        }
    )
    if summary.failed:
        rows["errors"] = str(out / "errors.jsonl")
    summary_table("sparrow world", rows)


def register(app: typer.Typer) -> None:
    app.command(name="world")(world)
