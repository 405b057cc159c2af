"""``sparrow flywheel``: Video DataFlywheel's rounds on a world (refine, train a captioner, re-annotate,
score), resumable per round, with a report page."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from sparrow.commands._options import config_flags, out_option, unset_option
from sparrow.flywheel.config import FlywheelConfig
from sparrow.ui import UsageError


def _refine_config(text: str | None) -> Any:
    from sparrow.refine.config import RefineConfig
    from sparrow.yamlio import apply_overrides

    try:
        return apply_overrides(
            FlywheelConfig().refine, text, "--refine", keys=[f.name for f in dataclasses.fields(RefineConfig)]
        )
    except ValueError as e:
        raise UsageError(str(e)) from e


@config_flags(FlywheelConfig, skip=("refine",), paths=("recipe", "captioner_init"))
def flywheel(
    world: Path = typer.Option(..., "--world", help="A `sparrow world` folder.", show_default=False),
    out: Path = out_option("Output folder (resumes a run with the same settings)."),
    *,
    cfg: FlywheelConfig,
    refine: str = typer.Option(
        None,
        "--refine",
        help="Round 0's LLM settings as key=value,... (the fields of `sparrow refine`, e.g. "
        "backend=openai,base_url=http://127.0.0.1:8000/v1,model=qwen); default: the packaged SmolLM2.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard an earlier run in --out."),
) -> None:
    """Round 0 refines the world's ASR transcripts with an LLM (few-shot with the human examples); each
    later round trains a captioner on the previous round's captions (AdaTaiLr by default; from the
    --captioner-init checkpoint when given, which must come from another world), fine-tunes it on the
    human examples, lets it re-caption the same segments, and scores the captions against the ground
    truth (the trinity, CIDEr-D intervals against the transcripts and round 0). Writes rounds.json and
    report.html into OUT."""
    from sparrow.captions import CaptionsError
    from sparrow.chat.base import BackendError
    from sparrow.commands._jobs import step_progress
    from sparrow.flywheel.config import FlywheelError
    from sparrow.flywheel.report import COLUMNS, table_row
    from sparrow.flywheel.run import flywheel as run
    from sparrow.jobs import JobError
    from sparrow.refine.errors import PromptError, RefineError
    from sparrow.train import RecipeError, TrainError
    from sparrow.ui import rows_table, summary_table

    cfg = dataclasses.replace(cfg, refine=_refine_config(refine))
    errors = (FlywheelError, BackendError, CaptionsError, PromptError, RefineError, JobError, RecipeError, TrainError)  # fmt: skip
    try:
        with step_progress() as hooks:
            rows = run(world, out, cfg, overwrite=overwrite, hooks=hooks)
    except errors as e:
        raise UsageError(str(e)) from e

    keep = [0, 1, 4, 5, 7, 12, 13]  # round, source, captions, words/caption, distinct-2, CIDEr-D, gain
    rows_table(
        "sparrow flywheel", [COLUMNS[i] for i in keep], [[table_row(r)[i] for i in keep] for r in rows]
    )
    summary_table("output", {"rounds": str(out / "rounds.json"), "report": str(out / "report.html")})


# ---- sparrow flywheel-losses: AdaTaiLr vs CE on the raw transcripts (sparrow.flywheel.loss_study) ----------


def _csv(text: str, flag: str, kind: type) -> list[Any]:
    try:
        return [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{flag} takes a comma-separated list, got {text!r}") from None


@config_flags(FlywheelConfig, skip=("refine", "rounds", "loss"), paths=("recipe", "captioner_init"))
def flywheel_losses(
    world: Path = typer.Option(..., "--world", help="A `sparrow world` folder.", show_default=False),
    out: Path = out_option("Output folder: the study goes to OUT/losses (resumes finished runs)."),
    *,
    cfg: FlywheelConfig,
    seeds: str = typer.Option("0,1,2", "--seeds", help="Training seeds, one run per loss and seed."),
    losses: str = typer.Option("ce,adatailr", "--losses", help="Losses; each is compared to the first."),
) -> None:
    """Train the flywheel's captioner on the world's raw (noisy) ASR transcripts once per loss and seed,
    with the same recipe and steps, let each re-caption the transcripts' segments, and score them against
    the ground truth: CIDEr-D per run with bootstrap intervals, and paired intervals of the difference to
    the first loss per seed and pooled. Writes OUT/losses/study.json and OUT/losses/report.html."""
    from sparrow.captions import CaptionsError
    from sparrow.chat.base import BackendError
    from sparrow.commands._jobs import step_progress
    from sparrow.flywheel.config import FlywheelError
    from sparrow.flywheel.loss_study import loss_study
    from sparrow.jobs import JobError
    from sparrow.train import RecipeError, TrainError
    from sparrow.ui import rows_table, summary_table

    seed_list, loss_list = _csv(seeds, "--seeds", int), _csv(losses, "--losses", str)
    try:
        with step_progress() as hooks:
            study = loss_study(world, out, cfg, seed_list, loss_list, hooks=hooks)
    except (FlywheelError, JobError, RecipeError, TrainError, BackendError, CaptionsError) as e:
        raise UsageError(str(e)) from e
    rows = [[r.name, r.quality.get("cider_d", 0.0), r.cider_d["low"], r.cider_d["high"]] for r in study.runs]
    signed = ("difference", "low", "high")
    rows += [[f"{d['loss']} - {d['baseline']} ({d['seed']})", *(f"{d[k]:+.3f}" for k in signed)]
             for d in study.differences]  # fmt: skip
    rows_table("sparrow flywheel-losses: CIDEr-D", ["run", "CIDEr-D", "95% low", "95% high"], rows)
    root = out / "losses"
    summary_table("output", {"study": str(root / "study.json"), "report": str(root / "report.html")})


def flywheel_pairs(
    world: Path = typer.Option(..., "--world", help="A `sparrow world` folder."),
    out: Path | None = unset_option(
        "--out", "-o", help="JSONL file to write (default: WORLD/train_narrated.jsonl)."
    ),
) -> None:
    """Write the flywheel's captioner task on a world's training videos: each ASR transcript line with its
    clip, answered with the ground-truth caption it aligns with ("No caption." for chatter). Training a
    checkpoint on these teaches it the task before `sparrow flywheel --captioner-init` on another world."""
    from sparrow.flywheel.narrated import world_pairs

    target = out or world / "train_narrated.jsonl"
    try:
        n = world_pairs(world, target)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e).splitlines()[0]) from None
    typer.echo(f"{n} narrated pairs -> {target}")


def register(app: typer.Typer) -> None:
    app.command(name="flywheel")(flywheel)
    app.command(name="flywheel-losses")(flywheel_losses)
    app.command(name="flywheel-pairs")(flywheel_pairs)
