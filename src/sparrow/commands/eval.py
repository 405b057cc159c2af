"""``sparrow eval``: multiple-choice evaluation of a checkpoint under the video / frame / text / swap
conditions, and ``sparrow lmms-task``: write an lmms-eval task folder for a benchmark file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from sparrow.commands import default
from sparrow.commands._options import config_flags, out_option
from sparrow.eval.conditions import PAIRED_KEYS, parse_conditions
from sparrow.eval.config import EvalOptions
from sparrow.ui import UsageError


def parse_buckets(text: str) -> tuple[float, ...]:
    try:
        edges = tuple(sorted(float(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise UsageError(f"--duration-buckets takes seconds like 30,120,600 (got {text!r})") from None
    if not edges:
        raise UsageError("--duration-buckets needs at least one edge")
    return edges


def buckets_option(edges: tuple[float, ...], help: str) -> Any:
    """The ``--duration-buckets`` option (parsed by ``parse_buckets``), shared with `sparrow curate`."""
    return typer.Option(",".join(f"{b:g}" for b in edges), "--duration-buckets", help=help)


def _d(name: str) -> Any:
    return default(EvalOptions, name)


def _ci(block: dict[str, Any]) -> str:
    lo, hi = block["ci95"]
    return f"[{lo:.3f}, {hi:.3f}]"


def _report(results: list[Any], title: str, out: Path) -> None:
    from sparrow.ui import rows_table, summary_table

    if len(results) == 1:
        cats = results[0].metrics["by_category"]
        rows_table(
            "accuracy by category",
            ["category", "n", "accuracy", "95% CI"],
            [[k, v["n"], v["accuracy"], _ci(v)] for k, v in cats.items()],
        )
    rows = [
        [r.condition, r.metrics["n"], r.metrics["accuracy"], _ci(r.metrics), r.errors + r.bad_rows]
        for r in results
    ]
    rows_table(title, ["condition", "n", "accuracy", "95% CI", "errors"], rows)
    paired = [
        [f"video − {r.condition}" + (" (video reliance)" if r.condition == "swap" else ""), p["n"], p["diff"]]
        + [_ci(p)]
        for r in results
        if (p := r.metrics.get(PAIRED_KEYS.get(r.condition, "")))
    ]
    if paired:
        rows_table(
            "paired differences (same questions)", ["difference", "n", "value", "paired 95% CI"], paired
        )
    summary_table("output", {"directory": str(out), "errors": sum(r[4] for r in rows)})


@config_flags(EvalOptions, skip=("conditions", "buckets"), paths=("media_root",), minimum={"threads": 1})
def eval_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Sparrow checkpoint directory (save_pretrained)."),
    bench: Path = typer.Option(
        ..., "--bench", "-b", help="Benchmark JSONL (rows as `sparrow world` writes)."
    ),
    out: Path = out_option("Output directory (created if missing)."),
    condition: str = typer.Option(
        _d("conditions")[0],
        "--condition",
        "--conditions",
        help="video (frames sampled per the model or --sampling), frame (centre frame only), text (no media),"
        " swap (another question's video, a seeded derangement), a comma list such as video,swap, or all"
        " (the four). Several go into OUT/<condition>, and each non-video one gets video minus it, paired"
        " (video − swap: the video reliance).",
    ),
    *,
    cfg: EvalOptions,  # --method ... --threads: one option per field
    duration_buckets: str = buckets_option(
        _d("buckets"), "Duration bucket edges in seconds for per-bucket accuracy."
    ),
) -> None:
    """Evaluate a checkpoint on a multiple-choice benchmark under Apollo's conditions: the video, the centre
    frame only, or the text only, and the swap control (each question asked with another question's
    video). Writes predictions.jsonl (id, prediction, correct, per-option scores), metrics.json (accuracy
    overall / per category / per duration bucket with bootstrap interval; with video, the paired
    difference to it), run.json and errors.jsonl. Resumable: run the same command again."""
    from sparrow.eval.errors import EvalError
    from sparrow.eval.runner import evaluate_checkpoint, model_name
    from sparrow.jobs import JobError
    from sparrow.ui import make_progress

    try:
        conditions = parse_conditions(condition)
    except ValueError as e:
        raise UsageError(str(e)) from None
    options = replace(
        cfg,
        conditions=conditions,
        name=cfg.name or model_name(model),
        buckets=parse_buckets(duration_buckets),
    )
    with make_progress() as progress:
        tasks: dict[str, Any] = {}

        def on_progress(cond: str, done: int, total: int) -> None:
            if cond not in tasks:
                tasks[cond] = progress.add_task(f"eval {cond}", total=total, rate="")
            progress.update(tasks[cond], completed=done)

        try:
            results = evaluate_checkpoint(model, bench, out, options, on_progress)
        except (EvalError, JobError, ValueError) as e:
            raise UsageError(str(e).splitlines()[0]) from e
    _report(results, f"sparrow eval: {options.name} on {bench.name} ({options.method})", out)


def lmms_task_cmd(
    bench: Path = typer.Option(
        ..., "--bench", "-b", help="Benchmark JSONL (rows as `sparrow world` writes)."
    ),
    out: Path = out_option("Folder to pass to lmms-eval's --include_path."),
    name: str = typer.Option(
        "sparrow_world", "--name", help="Task name (variants get _frame / _text / _swap / _mc)."
    ),
) -> None:
    """Write an lmms-eval task folder for a benchmark file: NAME (video, generation), NAME_frame,
    NAME_text, NAME_swap (another question's video) and NAME_mc (option log-likelihood). Run with
    `lmms-eval --model sparrow --model_args pretrained=CKPT --tasks NAME --include_path OUT --log_samples`."""
    from sparrow.eval.lmms_tasks import write_task
    from sparrow.ui import summary_table

    if not bench.is_file():
        raise UsageError(f"benchmark file not found: {bench}")
    try:
        files = write_task(bench, out, name)
    except ValueError as e:
        raise UsageError(str(e)) from e
    summary_table(
        "sparrow lmms-task",
        {"tasks": ", ".join(sorted(f.stem for f in files if f.suffix == ".yaml")), "folder": str(out)},
    )


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_cmd)
    app.command(name="lmms-task")(lmms_task_cmd)
