"""``sparrow demo``: the whole pipeline end to end on the embedded world, with an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.ui import UsageError


def demo_cmd(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Output directory (re-run to resume)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the world, the training and the bootstrap."),
    preset: str = typer.Option("tiny", "--preset", help="World size: tiny (default), small, medium."),
    recipe: Path = typer.Option(
        None, "--recipe", help="Training recipe (default: configs/tiny/apollo-3stage.yaml)."
    ),
    max_steps: int = typer.Option(
        None, "--max-steps", min=1, help="Cap every training stage at this many steps (smaller, faster)."
    ),
    videos: str = typer.Option(
        None, "--videos", help="World videos per split as TRAIN,VAL,TEST (default: 300,10,60)."
    ),
    method: str = typer.Option(
        "cloze",
        "--method",
        help="How questions are scored: cloze (option texts after the bare question; default), loglik "
        "(option letters) or generate. See docs/demo.md for why cloze suits the tiny model.",
    ),
    workers: int = typer.Option(2, "--workers", "-j", min=1, help="Processes for world and synth."),
    no_baseline: bool = typer.Option(
        False, "--no-baseline", help="Skip the video-only baseline (curation then has fewer models)."
    ),
) -> None:
    """Run the whole pipeline on the embedded world: generate it, synthesize pseudo-videos from its text,
    train a tiny video-LLM with Apollo's 3 stages (and a video-only baseline), evaluate every checkpoint
    under the video / centre-frame / text-only conditions, curate the benchmark, and write report.html."""
    from sparrow.commands.train import TrainProgress
    from sparrow.demo import DemoCallbacks, DemoConfig, DemoError, run_demo
    from sparrow.ui import make_progress, rows_table, summary_table

    extra: dict[str, Any] = {}
    if videos:
        try:
            t, v, s = (int(x) for x in videos.split(","))
        except ValueError:
            raise UsageError(f"--videos takes TRAIN,VAL,TEST counts like 40,10,20 (got {videos!r})") from None
        extra["world_overrides"] = {"videos": {"train": t, "val": v, "test": s}}
    cfg = DemoConfig(
        out=out,
        seed=seed,
        preset=preset,
        eval_method=method,
        **extra,
        recipe=recipe,
        max_steps=max_steps,
        workers=workers,
        baseline=not no_baseline,
    )
    progress = make_progress()
    tasks: dict[str, Any] = {}

    def items(name: str, done: int, total: int | None) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total, rate="")
        progress.update(tasks[name], completed=done, total=total)

    callbacks = DemoCallbacks(
        step=lambda name: progress.console.print(f"[bold]▶ {name}"),
        items=items,
        train=TrainProgress(progress),
    )
    try:
        with progress:
            summary = run_demo(cfg, callbacks)
    except DemoError as e:
        raise UsageError(str(e)) from e
    rows = []
    for name, by_mod in summary["metrics"].items():
        for mod, m in by_mod.items():
            rows.append([name, mod, m["n"], m["accuracy"], f"{m['ci95'][0]:.3f}-{m['ci95'][1]:.3f}"])
    rows_table(
        "accuracy on the world's test benchmark (chance 0.25)",
        ["model", "modality", "n", "accuracy", "95% CI"],
        rows,
    )
    cur = summary["curation"]
    summary_table(
        "sparrow demo",
        {
            **{f"seconds: {k}": v for k, v in summary["timings"].items()},
            "curated questions kept": f"{cur.get('kept')} of {cur.get('questions')}",
            "report": summary["report"],
        },
    )


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo_cmd)
