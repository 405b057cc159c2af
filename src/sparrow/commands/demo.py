"""``sparrow demo``: the whole pipeline end to end on the embedded world, with an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.ui import UsageError

# --quick: a smaller world and a quarter of the training steps, for a first look in a few minutes.
QUICK_VIDEOS = (120, 5, 60)
QUICK_STEPS_SCALE = 0.25


def _videos(text: str) -> dict[str, int]:
    try:
        t, v, s = (int(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--videos takes TRAIN,VAL,TEST counts like 300,10,120 (got {text!r})") from None
    if min(t, v, s) < 0 or t < 1 or s < 1:
        raise UsageError(f"--videos needs at least one train and one test video (got {text!r})")
    return {"train": t, "val": v, "test": s}


def demo_cmd(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Output directory (re-run to resume)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the world, the training and the bootstrap."),
    preset: str = typer.Option("tiny", "--preset", help="World size: tiny (default), small, medium."),
    videos: str = typer.Option(
        None, "--videos", help="World videos per split as TRAIN,VAL,TEST (default: 300,10,120)."
    ),
    recipe: Path = typer.Option(
        None, "--recipe", help="Training recipe (default: configs/tiny/apollo-3stage.yaml)."
    ),
    steps_scale: float = typer.Option(
        None,
        "--steps-scale",
        min=0.01,
        help="Multiply every training stage's steps (0.5: half the training; 2: twice as long).",
    ),
    max_steps: int = typer.Option(
        None, "--max-steps", min=1, help="Cap every training stage at this many steps."
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help=f"A first look in a few minutes: {QUICK_VIDEOS[0]},{QUICK_VIDEOS[1]},{QUICK_VIDEOS[2]} videos and "
        f"{QUICK_STEPS_SCALE:g} x the training steps (--videos / --steps-scale still win).",
    ),
    method: str = typer.Option(
        "cloze_norm",
        "--method",
        help="How questions are scored: cloze_norm (option texts after the bare question, per token; "
        "default), cloze (summed), loglik (option letters) or generate. See docs/demo.md.",
    ),
    workers: int = typer.Option(2, "--workers", "-j", min=1, help="Processes for world and synth."),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="CPU threads for training and evaluation (default: cores minus loader workers for training, "
        "1 for evaluation; on an idle machine --threads 2 trains faster).",
    ),
    no_baseline: bool = typer.Option(
        False, "--no-baseline", help="Skip the video-only baseline (curation then has fewer models)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start again: remove what an earlier demo wrote into --out."
    ),
) -> None:
    """Run the whole pipeline on the embedded world: generate it, synthesize pseudo-videos from its text,
    train a tiny video-LLM with Apollo's 3 stages (and a video-only baseline), evaluate the untrained model
    and every checkpoint under the video / centre-frame / text-only conditions, curate the benchmark, and
    write report.html. Re-running the same command resumes; finished steps are skipped."""
    from sparrow.commands.train import TrainProgress
    from sparrow.demo import DemoCallbacks, DemoConfig, DemoError, run_demo
    from sparrow.eval.mcq import METHODS
    from sparrow.ui import make_progress, rows_table, summary_table

    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} (got {method!r})")
    extra: dict[str, Any] = {}
    if videos or quick:
        extra["world_overrides"] = {"videos": _videos(videos or ",".join(map(str, QUICK_VIDEOS)))}
    if steps_scale is not None or quick:
        extra["steps_scale"] = steps_scale if steps_scale is not None else QUICK_STEPS_SCALE
    cfg = DemoConfig(
        out=out,
        seed=seed,
        preset=preset,
        eval_method=method,
        recipe=recipe,
        max_steps=max_steps,
        workers=workers,
        threads=threads,
        baseline=not no_baseline,
        overwrite=overwrite,
        **extra,
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
        f"accuracy on the world's test benchmark ({summary['method']}; chance 0.25, untrained = measured floor)",
        ["model", "modality", "n", "accuracy", "95% CI"],
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
                    f"{c['a']} ({c['a_modality']})",
                    f"{c['b']} ({c['b_modality']})",
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


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo_cmd)
