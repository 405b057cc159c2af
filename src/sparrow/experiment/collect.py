"""The driver side of an experiment: every run's result gathered in the grid's order, then
``results.jsonl``, ``table.md``, ``comparisons.json`` (``sparrow.experiment.compare``), ``report.html``
with its figures, and the summary the job runner saves as ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparrow.experiment.compare import build_table
from sparrow.experiment.grid import Grid
from sparrow.experiment.html import write_report
from sparrow.experiment.report import ExperimentSummary, markdown, result_rows, table_rows
from sparrow.io import atomic_write_text, write_jsonl
from sparrow.jobs.stage import Collector, ItemResult, JobCounts, JobReport, WorkItem

RESULTS, TABLE, COMPARISONS, REPORT = "results.jsonl", "table.md", "comparisons.json", "report.html"


class ExperimentCollector(Collector):
    """Gathers every run's result in the grid's order, then writes the outputs in ``close``."""

    def __init__(self, grid: Grid, out: Path):
        self.grid, self.out = grid, Path(out)
        self.results: list[dict[str, Any]] = []

    def add(self, item: WorkItem, result: ItemResult) -> int:
        assert result.value is not None
        self.results.append(result.value)
        return 1

    def close(self, report: JobReport) -> ExperimentSummary:
        grid, out = self.grid, self.out
        conditions = list(grid.eval.conditions)
        table = build_table(
            self.results, out, grid.variant_names(), grid.baseline, conditions, grid.eval.bootstrap
        )
        columns, rows = table_rows(table, conditions, grid.baseline)
        write_jsonl(out / RESULTS, result_rows(self.results))
        atomic_write_text(out / TABLE, f"# {grid.name}\n\n" + markdown(columns, rows))
        atomic_write_text(out / COMPARISONS, json.dumps(table, indent=2) + "\n")
        counts = JobCounts(report.items, report.ok, report.failed, report.resumed)
        summary = ExperimentSummary(grid.name, grid.baseline, conditions, counts, report.seconds)
        summary.table, summary.columns, summary.rows = table, columns, rows
        summary.files = {
            k: str(out / v) for k, v in (("results", RESULTS), ("table", TABLE), ("report", REPORT))
        }
        write_report(grid, self.results, summary, out / REPORT)
        return summary
