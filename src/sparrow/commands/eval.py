"""``sparrow eval``: multiple-choice evaluation of a checkpoint (video / centre frame / text only), and
``sparrow lmms-task``: write an lmms-eval task folder for a benchmark file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import typer

from sparrow.ui import UsageError


def _model_name(model: Path) -> str:
    """A readable default name: a training run's ``final`` / ``stage2-...`` checkpoint is named after
    its run directory too, so results of several runs do not all read ``final``."""
    model = model.resolve()
    if model.name == "final" or model.name.startswith("stage"):
        return f"{model.parent.name}-{model.name}"
    return model.name


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
        help="loglik (option-letter log-likelihood) or generate (greedy reply + parsing).",
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
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Discard saved results of an earlier run in --out."
    ),
) -> None:
    """Evaluate a checkpoint on a multiple-choice benchmark under Apollo's conditions: the video, the centre
    frame only, or the text only. Writes predictions.jsonl (id, prediction, correct, per-option scores),
    metrics.json (accuracy overall / per category / per duration bucket with bootstrap interval), run.json
    and errors.jsonl. Resumable: run the same command again."""
    from sparrow.eval.mcq import (
        EVAL_MODALITIES,
        METHODS,
        EvalConfig,
        compute_metrics,
        modality_sampling,
        parse_sampling_overrides,
        read_bench,
        run_eval,
    )
    from sparrow.jobs import JobError, prepare_state
    from sparrow.records import atomic_write_text, write_jsonl
    from sparrow.ui import make_progress, rows_table, summary_table

    modalities = list(EVAL_MODALITIES) if modality == "all" else [modality]
    if modalities[0] not in EVAL_MODALITIES:
        raise UsageError(f"--modality must be one of {', '.join(EVAL_MODALITIES)} or all (got {modality!r})")
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} (got {method!r})")
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if not bench.is_file():
        raise UsageError(f"benchmark file not found: {bench}")
    if not (model / "config.json").is_file():
        raise UsageError(f"not a Sparrow checkpoint (no config.json): {model}")
    edges = _buckets(duration_buckets)
    rows, bad = read_bench(bench)
    if not rows:
        raise UsageError(
            f"no valid benchmark rows in {bench}" + (f" (first problem: {bad[0].reason})" if bad else "")
        )

    from sparrow.model import ConfigError, load_pretrained

    try:
        mdl, processor = load_pretrained(model, device=device, dtype=dtype)
    except (ConfigError, OSError, ValueError) as e:
        raise UsageError(f"cannot load checkpoint {model}: {str(e).splitlines()[0]}") from e
    try:
        base_sampling = parse_sampling_overrides(sampling, processor.sampling)
    except ValueError as e:
        raise UsageError(str(e)) from e
    name = name or _model_name(model)
    bench_sha = hashlib.sha1(bench.read_bytes()).hexdigest()
    summary_rows = []
    for mod in modalities:
        odir = out / mod if len(modalities) > 1 else out
        cfg = EvalConfig(
            modality=mod,
            method=method,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            sampling=base_sampling,
            media_root=None if media_root is None else str(media_root),
        )
        fingerprint = {
            "model": str(model.resolve()),
            "bench_sha1": bench_sha,
            "modality": mod,
            "method": method,
            "sampling": asdict(base_sampling),
            "max_new_tokens": max_new_tokens if method == "generate" else None,
            "media_root": cfg.media_root,
            "dtype": dtype,
        }
        try:
            state = prepare_state(odir / ".state", fingerprint, overwrite=overwrite)
        except JobError as e:
            raise UsageError(str(e)) from e
        with make_progress() as progress:
            task = progress.add_task(f"eval {mod}", total=len(rows), rate="")
            preds, errors = run_eval(
                mdl, processor, rows, bench.parent, cfg, state / "results.jsonl",
                on_batch=lambda n, task=task: progress.update(task, advance=n),
            )  # fmt: skip
        metrics = compute_metrics(preds, edges, bootstrap, seed)
        metrics.update({"name": name, "modality": mod, "method": method, "errors": len(errors) + len(bad)})
        write_jsonl(odir / "predictions.jsonl", preds)
        write_jsonl(
            odir / "errors.jsonl", [b.to_dict() for b in bad] + [{**e, "source": str(bench)} for e in errors]
        )
        atomic_write_text(odir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        run = {
            "name": name,
            "model": str(model.resolve()),
            "bench": bench.stem,
            "bench_path": str(bench.resolve()),
            "modality": mod,
            "method": method,
            "sampling": asdict(modality_sampling(base_sampling, mod)),
            "questions": len(rows),
        }
        atomic_write_text(odir / "run.json", json.dumps(run, indent=2) + "\n")
        lo, hi = metrics["ci95"]
        summary_rows.append(
            [mod, len(preds), metrics["accuracy"], f"[{lo:.3f}, {hi:.3f}]", len(errors) + len(bad)]
        )
        if len(modalities) == 1:
            cats = metrics["by_category"]
            rows_table(
                "accuracy by category",
                ["category", "n", "accuracy", "95% CI"],
                [
                    [k, v["n"], v["accuracy"], f"[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"]
                    for k, v in cats.items()
                ],
            )
    rows_table(
        f"sparrow eval: {name} on {bench.name} ({method})",
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
