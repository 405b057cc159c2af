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
    import csv

    from sparrow.eval.curate import (
        CurateConfig,
        CurateError,
        ResultTable,
        curate,
        group_scores,
        load_results,
        parse_spec,
        plot_heatmap,
        redundancy_matrix,
    )
    from sparrow.records import atomic_write_text, write_jsonl
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
    loaded = []
    sources: dict[str, str] = {}
    try:
        for spec_text in track(results, "reading results", total=len(results), unit="inputs"):
            spec = parse_spec(spec_text)
            rs = load_results(spec)
            loaded += rs
            for r in rs:
                sources.setdefault(r.bench, str(spec.path))
        table = ResultTable(loaded)
        report = curate(table, CurateConfig(threshold, top_k, per_category, edges))
    except CurateError as e:
        raise UsageError(str(e)) from e

    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "kept.jsonl", [d.to_dict() for d in report.kept])
    write_jsonl(out / "decisions.jsonl", [d.to_dict() for d in report.decisions])
    # The curated benchmark itself, where the original rows can be found (sparrow eval runs name them).
    curated_files = _write_curated_rows(loaded, report, results, out)
    with (out / "scores.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "full", "curated"])
        for m in report.models:
            w.writerow([m, report.full_scores.get(m), report.curated_scores.get(m)])

    redundancy = {}
    pngs = []
    for by in ("bench", "category", "duration") if len(report.models) >= 3 else ():
        # R² between groups needs at least 3 models (2 points always lie on a line).
        scores = group_scores(table, by, edges)
        if len(scores) < 2:
            continue
        names, mat = redundancy_matrix(scores)
        redundancy[by] = {"groups": names, "r2": [[None if v != v else float(v) for v in row] for row in mat]}
        png = out / f"redundancy_{by}.png"
        plot_heatmap(names, mat, png, f"Redundancy by {by}: R² of model scores")
        pngs.append(png.name)

    summary = report.summary()
    doc = {
        "summary": summary,
        "settings": {
            "threshold": threshold,
            "top_k": top_k,
            "per_category": per_category,
            "buckets": list(edges),
        },
        "models": report.models,
        "full_scores": report.full_scores,
        "curated_scores": report.curated_scores,
        "correlation": report.correlation,
        "cost": report.cost,
        "redundancy": redundancy,
        "notes": report.notes,
        "curated_files": curated_files,
    }
    atomic_write_text(out / "curation.json", json.dumps(doc, indent=2) + "\n")

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
            "heatmaps": ", ".join(pngs) or "-",
            "output": str(out),
        },
    )
    from sparrow.ui import err_console

    if len(report.models) < 3:
        report.notes.append("fewer than 3 models: no redundancy matrices")
    for note in report.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")


def _write_curated_rows(loaded, report, specs: list[str], out: Path) -> list[str]:
    """Write curated_<bench>.jsonl (original rows, ranked) for benches whose rows are on disk."""
    from sparrow.eval.curate import parse_spec
    from sparrow.records import iter_jsonl, write_jsonl

    bench_files: dict[str, Path] = {}
    for text in specs:
        path = parse_spec(text).path
        for run in (
            [path / "run.json", path.parent / "run.json", *sorted(path.rglob("run.json"))]
            if path.is_dir()
            else [path.parent / "run.json"]
        ):
            if run.is_file():
                info = json.loads(run.read_text())
                bp = Path(info.get("bench_path", ""))
                if info.get("bench") and bp.is_file():
                    bench_files.setdefault(info["bench"], bp)
    written = []
    for bench, bp in bench_files.items():
        by_id = {obj["id"]: obj for _, obj in iter_jsonl(bp) if isinstance(obj, dict) and "id" in obj}
        kept = [by_id[d.qid] for d in report.kept if d.bench == bench and d.qid in by_id]
        if kept:
            name = f"curated_{bench}.jsonl"
            write_jsonl(out / name, kept)
            written.append(name)
    return written


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
    from sparrow.records import atomic_write_text
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
