"""``sparrow demo``: the whole pipeline end to end on the embedded world, with an HTML report."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import typer

from sparrow.commands import default
from sparrow.commands._options import config_flags
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


def _config(cfg: DemoConfig, videos: str | None, steps_scale: float | None, quick: bool) -> DemoConfig:
    """``cfg`` with the flags that are not its fields: --videos and --steps-scale win over --quick, which
    wins over defaults."""
    from sparrow.eval.config import METHODS

    if cfg.eval_method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} (got {cfg.eval_method!r})")
    if videos or quick:
        cfg = replace(cfg, world_overrides={"videos": _videos(videos) if videos else dict(QUICK_VIDEOS)})
    if steps_scale is not None or quick:
        cfg = replace(cfg, steps_scale=steps_scale if steps_scale is not None else QUICK_STEPS_SCALE)
    return cfg


def _run(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo with one progress bar per step item and the trainer's bars in the same display."""
    from sparrow.commands._jobs import step_progress
    from sparrow.demo import DemoError, run_demo

    try:
        with step_progress() as hooks:
            return run_demo(cfg, hooks)
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


# DemoConfig fields without an option of their own: two parsed by hand, and the library's settings.
_BY_HAND = ("world_overrides", "steps_scale")
_LIBRARY = ("synth_size", "synth_font_size", "eval_batch_size", "bootstrap", "curate_top_k", "reference")


@config_flags(
    DemoConfig,
    skip=_BY_HAND + _LIBRARY,
    flags={"out": ("-o",), "eval_method": ("--method",), "workers": ("-j",)},
    minimum={"max_steps": 1, "workers": 1, "threads": 1},
)
def demo_cmd(
    *,
    cfg: DemoConfig,  # --out, --seed, --method, ...: one option per field
    videos: str = typer.Option(
        None,
        "--videos",
        help=f"World videos per split as TRAIN,VAL,TEST (default: {_counts(_d('world_overrides')['videos'])}).",
    ),
    steps_scale: float = typer.Option(
        None,
        "--steps-scale",
        min=0.01,
        help="Multiply every training stage's steps (0.5: half the training; 2: twice as long; "
        f"default: {_d('steps_scale'):g}).",
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help=f"A first look in a few minutes: {_counts(QUICK_VIDEOS)} videos and {QUICK_STEPS_SCALE:g} x the "
        "training steps (--videos / --steps-scale still win).",
    ),
) -> None:
    """Run the whole pipeline on the embedded world: generate it, synthesize pseudo-videos from its text,
    train a video-LLM that sees (pretrained EfficientNet-Lite0, a small LM, frame-caption alignment first)
    with Apollo's 3 stages (and a video-only baseline), evaluate the untrained model and every checkpoint
    under the video / centre-frame / text-only / swapped-video conditions, curate the benchmark, and
    write report.html. Re-running the same command resumes; finished steps are skipped."""
    _print_summary(_run(_config(cfg, videos, steps_scale, quick)))


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo_cmd)
