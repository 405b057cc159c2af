"""The tables an experiment reports once its runs are done: ``results.jsonl`` rows (one per variant ×
seed × condition), ``table.md``'s text cells, per-category tables, and the summary the job runner saves
as ``summary.json``. ``collect`` writes them; ``html`` draws ``report.html`` from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sparrow.experiment.compare import GAPS, category_means
from sparrow.experiment.grid import Grid
from sparrow.jobs.stage import JobCounts


def primary_condition(conditions: Sequence[str]) -> str:
    """The condition variants are compared on first: video when evaluated."""
    return "video" if "video" in conditions else conditions[0]


def diff_text(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    lo, hi = d["ci95"]
    return f"{d['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def table_rows(
    table: list[dict[str, Any]], conditions: Sequence[str], baseline: str
) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of the experiment's table, as text: the markdown file, the report and the CLI
    print the same cells."""
    main = primary_condition(conditions)
    gaps = [g for g in GAPS if g in conditions and "video" in conditions]
    columns = [
        "variant",
        "seeds",
        *conditions,
        *[f"video - {g}" for g in gaps],
        f"{main} - {baseline} (95% CI)",
    ]
    rows = []
    for r in table:
        accs = [f"{r['accuracy'][c]:.3f}" if c in r["accuracy"] else "-" for c in conditions]
        cells = [diff_text(r["gaps"].get(f"video-{g}")) for g in gaps]
        versus = "baseline" if r["variant"] == baseline else diff_text(r["vs_baseline"].get(main))
        rows.append([r["variant"], ",".join(map(str, r["seeds"])), *accs, *cells, versus])
    return columns, rows


def markdown(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def result_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``results.jsonl``: one row per variant × seed × condition."""
    rows = []
    for r in results:
        for cond, c in r["conditions"].items():
            rows.append(
                {
                    "variant": r["variant"],
                    "seed": r["seed"],
                    "condition": cond,
                    "n": c["n"],
                    "accuracy": c["accuracy"],
                    "ci95": c["ci95"],
                    "errors": c["errors"],
                    "by_category": c["by_category"],
                    "dir": r["dir"],
                    "final_loss": r["final_loss"],
                    "train_seconds": r["train_seconds"],
                }
            )
    return rows


@dataclass
class ExperimentSummary:
    """``summary.json``: the run counts, the table and where everything is."""

    name: str
    baseline: str
    conditions: list[str]
    counts: JobCounts
    seconds: float
    table: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("columns"), d.pop("rows")  # the text cells are table.md's; the numbers are in `table`
        return d


def category_table(
    grid: Grid, results: Sequence[dict[str, Any]], condition: str
) -> tuple[list[str], list[list[Any]]]:
    """Per-category accuracy under ``condition``, one row per variant (mean over seeds)."""
    by_variant = {v: category_means(results, v, condition) for v in grid.variant_names()}
    cats = sorted({c for m in by_variant.values() for c in m})
    rows = [[v, *[m.get(c, float("nan")) for c in cats]] for v, m in by_variant.items() if m]
    return ["variant", *cats], rows
