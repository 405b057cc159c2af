"""``sparrow curate``: ApolloBench-style curation from per-question results of several models, and
``sparrow consistency``: does a design ranking at one model size hold at another."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from sparrow.commands import default
from sparrow.commands._options import config_flags, out_option, required_argument
from sparrow.commands.eval import buckets_option, parse_buckets
from sparrow.eval.curate import CurateConfig
from sparrow.ui import UsageError


def _d(name: str) -> Any:
    return default(CurateConfig, name)


def _f3(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _report(done: Any, out: Path) -> None:
    from rich.markup import escape

    from sparrow.ui import err_console, rows_table, summary_table

    report, summary = done.report, done.document["summary"]
    rows_table(
        "model scores (video): full vs curated",
        ["model", "full", "curated"],
        [
            [m, report.full_scores.get(m, float("nan")), report.curated_scores.get(m, float("nan"))]
            for m in report.models
        ],
    )
    c, reduction = report.correlation, report.cost["reduction_x"]
    summary_table(
        "sparrow curate",
        {
            "questions in": summary["questions"],
            "dropped: text-answerable": summary["dropped_text_answerable"],
            "dropped: frame-answerable": summary["dropped_frame_answerable"],
            "dropped: below top-k": summary["dropped_below_top_k"],
            "kept": summary["kept"],
            "cost reduction (questions)": f"{reduction:.1f}x" if reduction else "-",
            "models": len(report.models),
            "Spearman / Kendall / R²": " / ".join(_f3(c[k]) for k in ("spearman", "kendall", "r2")),
            "heatmaps": ", ".join(p.name for p in done.heatmaps) or "-",
            "output": str(out),
        },
    )
    for note in report.notes:
        err_console.print(f"[yellow]note:[/yellow] {escape(note)}")


@config_flags(CurateConfig, skip=("buckets",), flags={"top_k": ("-k",)})
def curate_cmd(
    results: list[str] = required_argument(
        "Results of models under the video / frame / text conditions: `sparrow eval` output folders, "
        "lmms-eval sample logs (*_samples_<task>.jsonl) or folders holding them. Prefix MODEL@ and/or "
        "CONDITION: to override what is read from the files, e.g. 'qwen7b@text:logs/qwen7b/'."
    ),
    out: Path = out_option("Output directory (created if missing)."),
    *,
    cfg: CurateConfig,  # --threshold, --top-k, --per-category
    duration_buckets: str = buckets_option(
        _d("buckets"), "Bucket edges (seconds) for the redundancy matrix by duration."
    ),
) -> None:
    """Curate a benchmark the ApolloBench way: drop questions most models answer from the text alone or
    from one frame, rank the rest by answer entropy across models, keep the top K. Reports the size kept,
    the evaluation-cost reduction, rank correlation (Spearman, Kendall) and R² of model scores on the
    curated vs the full set, and redundancy matrices (R² of model scores between benchmarks, categories,
    duration buckets) as heatmaps."""
    from sparrow.eval.curate import curate_results
    from sparrow.eval.errors import CurateError
    from sparrow.ui import track

    config = replace(cfg, buckets=parse_buckets(duration_buckets))
    inputs = track(results, "reading results", total=len(results), unit="inputs")
    try:
        done = curate_results(list(inputs), out, config)
    except CurateError as e:
        raise UsageError(str(e)) from e
    _report(done, out)


def consistency_cmd(
    scores: Path = required_argument(
        "Scores of design variants at model sizes: CSV 'variant,<size>,<size>' (wide), CSV "
        "'variant,size,score' (long) or JSON {variant: {size: score}}."
    ),
    small: str = typer.Option(None, "--small", help="The smaller size's column (default: the first)."),
    large: str = typer.Option(None, "--large", help="The larger size's column (default: the second)."),
    out: Path = out_option("Output directory for consistency.json and the plot."),
) -> None:
    """Scaling consistency (Apollo): R² between the scores of the same design variants at two model sizes.
    A high R² means decisions measured on the small model transfer to the large one."""
    from sparrow.eval.analysis import consistency_from_file, plot_consistency
    from sparrow.eval.errors import CurateError
    from sparrow.io import atomic_write_text
    from sparrow.ui import summary_table

    try:
        a, b, res = consistency_from_file(scores, small, large)
    except CurateError as e:
        raise UsageError(str(e)) from e
    out.mkdir(parents=True, exist_ok=True)
    plot_consistency(res, out / "consistency.png", a, b)
    atomic_write_text(out / "consistency.json", json.dumps({"small": a, "large": b, **res}, indent=2) + "\n")
    summary_table(
        "sparrow consistency",
        {
            "sizes": f"{a} -> {b}",
            "variants": len(res["variants"]),
            "R²": _f3(res["r2"]),
            "Spearman": _f3(res["spearman"]),
            "Kendall": _f3(res["kendall"]),
            "plot": str(out / "consistency.png"),
        },
    )


def register(app: typer.Typer) -> None:
    app.command(name="curate")(curate_cmd)
    app.command(name="consistency")(consistency_cmd)
