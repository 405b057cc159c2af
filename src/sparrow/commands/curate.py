"""``sparrow curate``: ApolloBench-style curation from per-question results of several models, and
``sparrow consistency``: does a design ranking at one model size hold at another."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sparrow.ui import UsageError


def curate_cmd(
    results: list[str] = typer.Argument(
        ...,
        help="Results of models under the video / frame / text conditions: `sparrow eval` output folders, "
        "lmms-eval sample logs (*_samples_<task>.jsonl) or folders holding them. Prefix MODEL@ and/or "
        "MODALITY: to override what is read from the files, e.g. 'qwen7b@text:logs/qwen7b/'.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (created if missing)."),
    threshold: float = typer.Option(
        0.5,
        "--threshold",
        help="Drop a question when MORE than this share of models is right from text or frame.",
    ),
    top_k: int = typer.Option(
        None, "--top-k", "-k", help="Keep the K highest-entropy questions (default: all)."
    ),
    per_category: bool = typer.Option(False, "--per-category", help="Apply --top-k within each category."),
    duration_buckets: str = typer.Option(
        "30,120,600",
        "--duration-buckets",
        help="Bucket edges (seconds) for the redundancy matrix by duration.",
    ),
) -> None:
    """Curate a benchmark the ApolloBench way: drop questions most models answer from the text alone or
    from one frame, rank the rest by answer entropy across models, keep the top K. Reports the size kept,
    the evaluation-cost reduction, rank correlation (Spearman, Kendall) and R² of model scores on the
    curated vs the full set, and redundancy matrices (R² of model scores between benchmarks, categories,
    duration buckets) as heatmaps."""
    from sparrow.eval.curate import CurateConfig, CurateError
    from sparrow.eval.runner import curate_results
    from sparrow.ui import rows_table, summary_table, track

    if not 0.0 <= threshold < 1.0:
        raise UsageError("--threshold must be in [0, 1)")
    if top_k is not None and top_k < 1:
        raise UsageError("--top-k must be at least 1")
    try:
        edges = tuple(sorted(float(x) for x in duration_buckets.split(",") if x.strip()))
    except ValueError:
        raise UsageError(
            f"--duration-buckets takes seconds like 30,120,600 (got {duration_buckets!r})"
        ) from None
    inputs = track(results, "reading results", total=len(results), unit="inputs")
    try:
        done = curate_results(list(inputs), out, CurateConfig(threshold, top_k, per_category, edges))
    except CurateError as e:
        raise UsageError(str(e)) from e
    report, summary = done.report, done.document["summary"]
    rows_table(
        "model scores (video): full vs curated",
        ["model", "full", "curated"],
        [
            [m, report.full_scores.get(m, float("nan")), report.curated_scores.get(m, float("nan"))]
            for m in report.models
        ],
    )
    c = report.correlation
    summary_table(
        "sparrow curate",
        {
            "questions in": summary["questions"],
            "dropped: text-answerable": summary["dropped_text_answerable"],
            "dropped: frame-answerable": summary["dropped_frame_answerable"],
            "dropped: below top-k": summary["dropped_below_top_k"],
            "kept": summary["kept"],
            "cost reduction (questions)": f"{report.cost['reduction_x']:.1f}x"
            if report.cost["reduction_x"]
            else "-",
            "models": len(report.models),
            "Spearman / Kendall / R²": " / ".join(
                "-" if c[k] is None else f"{c[k]:.3f}" for k in ("spearman", "kendall", "r2")
            ),
            "heatmaps": ", ".join(p.name for p in done.heatmaps) or "-",
            "output": str(out),
        },
    )
    from sparrow.ui import err_console

    for note in report.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")


def consistency_cmd(
    scores: Path = typer.Argument(
        ...,
        help="Scores of design variants at model sizes: CSV 'variant,<size>,<size>' (wide), CSV "
        "'variant,size,score' (long) or JSON {variant: {size: score}}.",
    ),
    small: str = typer.Option(None, "--small", help="The smaller size's column (default: the first)."),
    large: str = typer.Option(None, "--large", help="The larger size's column (default: the second)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for consistency.json and the plot."),
) -> None:
    """Scaling consistency (Apollo): R² between the scores of the same design variants at two model sizes.
    A high R² means decisions measured on the small model transfer to the large one."""
    from sparrow.eval.curate import CurateError, consistency, plot_consistency, read_variant_scores
    from sparrow.io import atomic_write_text
    from sparrow.ui import summary_table

    try:
        by_size = read_variant_scores(scores)
        sizes = list(by_size)
        if len(sizes) < 2:
            raise CurateError(f"{scores}: needs scores at two sizes, found {sizes}")
        a, b = small or sizes[0], large or sizes[1]
        for s in (a, b):
            if s not in by_size:
                raise CurateError(f"size {s!r} not in {scores} (sizes: {', '.join(sizes)})")
        res = consistency(by_size[a], by_size[b])
    except CurateError as e:
        raise UsageError(str(e)) from e
    out.mkdir(parents=True, exist_ok=True)
    plot_consistency(res, out / "consistency.png", a, b)
    atomic_write_text(out / "consistency.json", json.dumps({"small": a, "large": b, **res}, indent=2) + "\n")

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    summary_table(
        "sparrow consistency",
        {
            "sizes": f"{a} -> {b}",
            "variants": len(res["variants"]),
            "R²": f(res["r2"]),
            "Spearman": f(res["spearman"]),
            "Kendall": f(res["kendall"]),
            "plot": str(out / "consistency.png"),
        },
    )


def register(app: typer.Typer) -> None:
    app.command(name="curate")(curate_cmd)
    app.command(name="consistency")(consistency_cmd)
