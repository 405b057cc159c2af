"""``sparrow eval``: multiple-choice evaluation of a checkpoint (video / centre frame / text only), and
``sparrow lmms-task``: write an lmms-eval task folder for a benchmark file."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.ui import UsageError


def _buckets(text: str) -> tuple[float, ...]:
    try:
        edges = tuple(sorted(float(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise UsageError(f"--duration-buckets takes seconds like 30,120,600 (got {text!r})") from None
    if not edges:
        raise UsageError("--duration-buckets needs at least one edge")
    return edges


def eval_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Sparrow checkpoint directory (save_pretrained)."),
    bench: Path = typer.Option(
        ..., "--bench", "-b", help="Benchmark JSONL (rows as `sparrow world` writes)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (created if missing)."),
    modality: str = typer.Option(
        "video",
        "--modality",
        help="video (frames sampled per the model or --sampling), frame (centre frame only), text (no media),"
        " or all (the three, into OUT/video, OUT/frame, OUT/text).",
    ),
    method: str = typer.Option(
        "loglik",
        "--method",
        help="loglik (option-letter log-likelihood), generate (greedy reply + parsing) or cloze (the bare "
        "question, each option text scored as the reply; suits very small models).",
    ),
    sampling: str = typer.Option(
        None,
        "--sampling",
        help="Override the checkpoint's frame sampling, e.g. 'strategy=uniform,num_frames=16' or "
        "'fps=2,max_frames=64,timestamps=none' (fields of SamplingConfig).",
    ),
    name: str = typer.Option(
        None, "--name", help="Model name in results and curation (default: from --model)."
    ),
    batch_size: int = typer.Option(8, "--batch-size", help="Questions per forward pass (loglik)."),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens", help="Reply length cap (generate)."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
    dtype: str = typer.Option(
        None, "--dtype", help="Override the checkpoint dtype (float32, bfloat16, ...)."
    ),
    media_root: Path = typer.Option(
        None, "--media-root", help="Resolve video paths here instead of next to the benchmark file."
    ),
    duration_buckets: str = typer.Option(
        "30,120,600", "--duration-buckets", help="Duration bucket edges in seconds for per-bucket accuracy."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the 95% interval."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="torch CPU threads (default: torch's). On a busy CPU, 1 is often many times faster for small models.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Discard saved results of an earlier run in --out."
    ),
) -> None:
    """Evaluate a checkpoint on a multiple-choice benchmark under Apollo's conditions: the video, the centre
    frame only, or the text only. Writes predictions.jsonl (id, prediction, correct, per-option scores),
    metrics.json (accuracy overall / per category / per duration bucket with bootstrap interval), run.json
    and errors.jsonl. Resumable: run the same command again."""
    from sparrow.eval.mcq import EVAL_MODALITIES
    from sparrow.eval.runner import EvalError, EvalOptions, evaluate_checkpoint, model_name
    from sparrow.jobs import JobError
    from sparrow.ui import make_progress, rows_table, summary_table

    options = EvalOptions(
        modalities=tuple(EVAL_MODALITIES) if modality == "all" else (modality,),
        method=method,
        sampling=sampling,
        name=name or model_name(model),
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        device=device,
        dtype=dtype,
        media_root=None if media_root is None else str(media_root),
        buckets=_buckets(duration_buckets),
        bootstrap=bootstrap,
        seed=seed,
        overwrite=overwrite,
        threads=threads,
    )
    with make_progress() as progress:
        tasks: dict[str, int] = {}

        def on_progress(mod: str, done: int, total: int) -> None:
            if mod not in tasks:
                tasks[mod] = progress.add_task(f"eval {mod}", total=total, rate="")
            progress.update(tasks[mod], completed=done)

        try:
            results = evaluate_checkpoint(model, bench, out, options, on_progress)
        except (EvalError, JobError, ValueError) as e:
            raise UsageError(str(e).splitlines()[0]) from e
    summary_rows = []
    for r in results:
        lo, hi = r.metrics["ci95"]
        errs = r.errors + r.bad_rows
        summary_rows.append(
            [r.modality, r.metrics["n"], r.metrics["accuracy"], f"[{lo:.3f}, {hi:.3f}]", errs]
        )
    if len(results) == 1:
        cats = results[0].metrics["by_category"]
        rows_table(
            "accuracy by category",
            ["category", "n", "accuracy", "95% CI"],
            [
                [k, v["n"], v["accuracy"], f"[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"]
                for k, v in cats.items()
            ],
        )
    rows_table(
        f"sparrow eval: {options.name} on {bench.name} ({method})",
        ["modality", "n", "accuracy", "95% CI", "errors"],
        summary_rows,
    )
    summary_table("output", {"directory": str(out), "errors": sum(r[4] for r in summary_rows)})


def lmms_task_cmd(
    bench: Path = typer.Option(
        ..., "--bench", "-b", help="Benchmark JSONL (rows as `sparrow world` writes)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to pass to lmms-eval's --include_path."),
    name: str = typer.Option(
        "sparrow_world", "--name", help="Task name (variants get _frame / _text / _mc)."
    ),
) -> None:
    """Write an lmms-eval task folder for a benchmark file: NAME (video, generation), NAME_frame,
    NAME_text and NAME_mc (option log-likelihood). Run with
    `lmms-eval --model sparrow --model_args pretrained=CKPT --tasks NAME --include_path OUT --log_samples`."""
    from sparrow.eval.lmms_tasks import write_task

    if not bench.is_file():
        raise UsageError(f"benchmark file not found: {bench}")
    try:
        files = write_task(bench, out, name)
    except ValueError as e:
        raise UsageError(str(e)) from e
    from sparrow.ui import summary_table

    summary_table(
        "sparrow lmms-task",
        {"tasks": ", ".join(sorted(f.stem for f in files if f.suffix == ".yaml")), "folder": str(out)},
    )


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_cmd)
    app.command(name="lmms-task")(lmms_task_cmd)
