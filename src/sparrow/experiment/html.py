"""``report.html``: the grid, the table, every comparison against the baseline, accuracy per category and
per run, with two figures; built from the same numbers as ``table.md`` (``sparrow.report``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sparrow.experiment.compare import category_means
from sparrow.experiment.grid import Grid
from sparrow.experiment.report import ExperimentSummary, category_table, diff_text, primary_condition
from sparrow.report import Figure, Report, bar_chart

INTERVALS = (
    "Intervals are paired bootstrap 95 % intervals: a question's score is its correctness averaged over the "
    "seeds both sides ran, and questions are resampled together. They do not include seed-to-seed "
    "variation; the error bars of the first figure show the range over seeds."
)


def _grid_section(report: Report, grid: Grid) -> None:
    sec = report.section("Grid")
    spec = grid.eval
    sec.table(
        ["setting", "value"],
        [
            ["recipe", str(grid.recipe)],
            ["data root", str(grid.data_root)],
            ["benchmark", str(spec.bench)],
            ["conditions", ", ".join(spec.conditions)],
            ["scoring", spec.method],
            ["seeds", ", ".join(map(str, grid.seeds))],
            ["max steps per stage", "recipe's" if grid.max_steps is None else grid.max_steps],
            ["overrides of every variant", _overrides(grid.overrides)],
        ],
    )
    rows = [
        [
            v.name + (" (baseline)" if v.name == grid.baseline else ""),
            _overrides(v.overrides),
            str(v.data_root),
        ]
        for v in grid.variants
    ]
    sec.table(["variant", "overrides", "data root"], rows)


def _overrides(d: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in d.items()) or "-"


def _figures(
    grid: Grid, summary: ExperimentSummary, results: Sequence[dict[str, Any]], figs: Path
) -> list[Figure]:
    figs.mkdir(parents=True, exist_ok=True)
    groups = {r["variant"]: r["accuracy"] for r in summary.table}
    ranges = {r["variant"]: {c: tuple(lh) for c, lh in r["accuracy_range"].items()} for r in summary.table}
    main = primary_condition(summary.conditions)
    cats = {v: m for v in grid.variant_names() if (m := category_means(results, v, main))}
    out = [
        Figure(
            bar_chart(groups, figs / "conditions.png", "accuracy per condition", errors=ranges),
            "Mean accuracy over seeds per condition; bars: the lowest and highest seed.",
        )
    ]
    if cats:
        out.append(
            Figure(
                bar_chart(cats, figs / "categories.png", f"accuracy per category ({main})"),
                f"Per-category accuracy under the {main} condition, mean over seeds.",
            )
        )
    return out


def write_report(
    grid: Grid, results: Sequence[dict[str, Any]], summary: ExperimentSummary, path: Path
) -> Path:
    c = summary.counts
    intro = f"{c.ok} of {c.items} runs finished" + (f", {c.failed} failed (errors.jsonl)" if c.failed else "")
    report = Report(f"Experiment: {grid.name}", intro + f"; baseline: {grid.baseline}.")
    _grid_section(report, grid)
    sec = report.section("Results")
    sec.table(summary.columns, summary.rows, caption="Accuracy is the mean over seeds. " + INTERVALS)
    if results:
        sec.figures(_figures(grid, summary, results, path.parent / "figures"))
    versus = [
        [r["variant"], cond, d["questions"], d["diff"], diff_text(d), "yes" if d["excludes_zero"] else "no"]
        for r in summary.table
        for cond, d in r["vs_baseline"].items()
        if d
    ]
    if versus:
        sec = report.section(f"Against the baseline ({grid.baseline})")
        sec.table(["variant", "condition", "questions", "difference", "95% CI", "excludes 0"], versus)
    main = primary_condition(summary.conditions)
    columns, rows = category_table(grid, results, main)
    if rows:
        report.section(f"Per category ({main})").table(columns, rows, caption="Mean over seeds.")
    runs = [
        [r["variant"], r["seed"], cond, v["n"], v["accuracy"], r["train_seconds"], r["dir"]]
        for r in results
        for cond, v in r["conditions"].items()
    ]
    report.section("Runs").table(["variant", "seed", "condition", "n", "accuracy", "train s", "folder"], runs)
    return report.write(path)
