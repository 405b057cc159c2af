"""``sparrow demo``: the whole pipeline end to end on the embedded world, with an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.commands import default
from sparrow.commands._options import config_options
from sparrow.demo.config import QUICK_STEPS_SCALE, QUICK_VIDEOS, DemoConfig
from sparrow.ui import UsageError

SPLITS = ("train", "val", "test")


def _counts(videos: dict[str, int]) -> str:
    return ",".join(str(videos[s]) for s in SPLITS)


def _videos(text: str) -> dict[str, int]:
    try:
        t, v, s = (int(x) for x in text.split(","))
    except ValueError:
        example = _counts(default(DemoConfig, "world_overrides")["videos"])
        raise UsageError(f"--videos takes TRAIN,VAL,TEST counts like {example} (got {text!r})") from None
    if min(t, v, s) < 0 or t < 1 or s < 1:
        raise UsageError(f"--videos needs at least one train and one test video (got {text!r})")
    return {"train": t, "val": v, "test": s}


def _config(videos: str | None, steps_scale: float | None, quick: bool, **settings: Any) -> DemoConfig:
    """The DemoConfig of the flags: --videos and --steps-scale win over --quick, which wins over defaults."""
    from sparrow.eval.config import METHODS

    if settings["eval_method"] not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} (got {settings['eval_method']!r})")
    if videos or quick:
        settings["world_overrides"] = {"videos": _videos(videos) if videos else dict(QUICK_VIDEOS)}
    if steps_scale is not None or quick:
        settings["steps_scale"] = steps_scale if steps_scale is not None else QUICK_STEPS_SCALE
    return DemoConfig(**settings)


def _run(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo with one progress bar per step item and the trainer's bars in the same display."""
    from rich.markup import escape

    from sparrow.commands.train import TrainProgress
    from sparrow.demo import DemoCallbacks, DemoError, run_demo
    from sparrow.ui import make_progress

    progress = make_progress()
    tasks: dict[str, Any] = {}

    def items(name: str, done: int, total: int | None) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total, rate="")
        progress.update(tasks[name], completed=done, total=total)

    callbacks = DemoCallbacks(
        step=lambda name: progress.console.print(f"[bold]▶ {escape(name)}"),
        items=items,
        train=TrainProgress(progress),
    )
    try:
        with progress:
            return run_demo(cfg, callbacks)
    except DemoError as e:
        raise UsageError(str(e)) from e


def _print_summary(summary: dict[str, Any]) -> None:
    from sparrow.ui import rows_table, summary_table

    rows = [
        [name, cond, m["n"], m["accuracy"], f"{m['ci95'][0]:.3f}-{m['ci95'][1]:.3f}"]
        for name, by_cond in summary["metrics"].items()
        for cond, m in by_cond.items()
    ]
    rows_table(
        f"accuracy on the world's test benchmark ({summary['method']}; chance {summary['chance']}, "
        "untrained = measured floor)",
        ["model", "condition", "n", "accuracy", "95% CI"],
        rows,
    )
    comps = [c for c in summary["comparisons"] if c["category"] is None]
    if comps:
        rows_table(
            "what each part adds (paired bootstrap on the same questions)",
            ["adds", "A", "B", "A minus B", "95% CI"],
            [
                [
                    c["what"],
                    f"{c['a']} ({c['a_condition']})",
                    f"{c['b']} ({c['b_condition']})",
                    f"{c['diff']:+.3f}",
                    f"{c['ci95'][0]:+.3f} to {c['ci95'][1]:+.3f}",
                ]
                for c in comps
            ],
        )
    cur = summary["curation"]
    summary_table(
        "sparrow demo",
        {
            **{f"seconds: {k}": v for k, v in summary["timings"].items()},
            "curated questions kept": f"{cur.get('kept')} of {cur.get('questions')}",
            "reading": summary["reading"][0],
            "report": summary["report"],
        },
    )


def _d(name: str) -> Any:
    return default(DemoConfig, name)


_opt = config_options(DemoConfig)


def demo_cmd(
    out: Path = _opt("out", "-o", help="Output directory (re-run to resume)."),
    seed: int = _opt("seed", help="Seed of the world, the training and the bootstrap."),
    preset: str = _opt("preset", help="World size: tiny, small or medium."),
    videos: str = typer.Option(
        None,
        "--videos",
        help=f"World videos per split as TRAIN,VAL,TEST (default: {_counts(_d('world_overrides')['videos'])}).",
    ),
    recipe: Path = typer.Option(
        None, "--recipe", help="Training recipe (default: configs/tiny/apollo-3stage.yaml)."
    ),
    steps_scale: float = typer.Option(
        None,
        "--steps-scale",
        min=0.01,
        help="Multiply every training stage's steps (0.5: half the training; 2: twice as long; "
        f"default: {_d('steps_scale'):g}).",
    ),
    max_steps: int = typer.Option(
        None, "--max-steps", min=1, help="Cap every training stage at this many steps."
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help=f"A first look in a few minutes: {_counts(QUICK_VIDEOS)} videos and {QUICK_STEPS_SCALE:g} x the "
        "training steps (--videos / --steps-scale still win).",
    ),
    method: str = _opt(
        "eval_method",
        "--method",
        help="How questions are scored: cloze_norm (option texts after the bare question, per token; "
        "the demo's default), cloze (summed), loglik (option letters) or generate. See docs/demo.md.",
    ),
    workers: int = _opt("workers", "-j", min=1, help="Processes for world and synth."),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="CPU threads for training and evaluation (default: cores minus loader workers for training, "
        "1 for evaluation; on an idle machine --threads 2 trains faster).",
    ),
    no_baseline: bool = typer.Option(
        not _d("baseline"),
        "--no-baseline",
        help="Skip the video-only baseline (curation then has fewer models).",
    ),
    overwrite: bool = _opt("overwrite", help="Start again: remove what an earlier demo wrote into --out."),
) -> None:
    """Run the whole pipeline on the embedded world: generate it, synthesize pseudo-videos from its text,
    train a tiny video-LLM with Apollo's 3 stages (and a video-only baseline), evaluate the untrained model
    and every checkpoint under the video / centre-frame / text-only conditions, curate the benchmark, and
    write report.html. Re-running the same command resumes; finished steps are skipped."""
    settings = dict(out=out, seed=seed, preset=preset, eval_method=method, recipe=recipe, max_steps=max_steps)
    settings.update(workers=workers, threads=threads, baseline=not no_baseline, overwrite=overwrite)
    _print_summary(_run(_config(videos, steps_scale, quick, **settings)))


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo_cmd)
