"""Experiments: a YAML grid of recipe variants × seeds, each trained and evaluated, compared in one
table and report with paired intervals against a named baseline. See docs/experiment.md.

    from sparrow.experiment import ExperimentOptions, load_grid, run_experiment
    summary = run_experiment(load_grid("configs/experiments/connector.yaml"), "runs/connector")

Modules: grid (the YAML grid, its checks and its expansion into runs), overrides (dotted keys over a
recipe mapping), runner (one job item per run: train, evaluate; the run guard; resume), compare (the
table's numbers from the predictions), report (the tables and the summary), html (report.html),
collect (the collector that writes results.jsonl, table.md, comparisons.json and report.html).
"""

from __future__ import annotations

from sparrow.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        ".errors": "ExperimentError",
        ".grid": "Grid EvalSpec RunSpec Variant load_grid",
        ".runner": "ExperimentOptions run_experiment",
        ".report": "ExperimentSummary",
    },
)
