"""``run_demo``: the five steps in order, each skipped when an earlier run finished it, then the report
and OUT/summary.json."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from sparrow.demo.compare import comparisons
from sparrow.demo.config import (
    BASELINE_RUN,
    CHANCE,
    MAIN_RUN,
    REFERENCE,
    DemoConfig,
    DemoError,
)
from sparrow.demo.data import make_synth, make_world
from sparrow.demo.evaluate import curate_all, evaluate_all
from sparrow.demo.reading import honest_reading
from sparrow.demo.recipes import load_recipe
from sparrow.demo.report import write_report
from sparrow.demo.runs import checkpoints, final_name, make_reference, train_runs
from sparrow.demo.state import Steps, clear_outputs, json_default
from sparrow.eval.conditions import CONDITIONS
from sparrow.io import atomic_write_text
from sparrow.jobs.hooks import StepHooks


def _step_keys(cfg: DemoConfig, recipe: Any) -> dict[str, Any]:
    """The settings each step's outputs depend on (a change invalidates that step)."""
    settings = dataclasses.asdict(cfg)
    return {
        "world": {k: settings[k] for k in ("seed", "preset", "world_overrides")},
        "synth": {k: settings[k] for k in ("synth_size", "synth_font_size")},
        "train": {"recipe": recipe.to_dict(), "max_steps": cfg.max_steps, "baseline": cfg.baseline},
        "eval": {k: settings[k] for k in ("eval_method", "eval_batch_size", "bootstrap", "reference")},
        "curate": {"top_k": cfg.curate_top_k},
    }


def _summary(cfg: DemoConfig, parts: dict[str, Any], metrics: dict[str, Any], curation: dict) -> dict:
    comps = parts["comparisons"]
    return {
        "report": str(parts["report"]),
        "timings": parts["timings"],
        "synth": parts["synth"],
        "train": {
            k: {"final": v.get("final"), "seconds": v.get("seconds")} for k, v in parts["train"].items()
        },
        "method": cfg.eval_method,
        "final_model": final_name(metrics),
        "reference": REFERENCE if REFERENCE in metrics else None,
        "metrics": {
            name: {c: {"accuracy": m["accuracy"], "ci95": m["ci95"], "n": m["n"]} for c, m in by_cond.items()}
            for name, by_cond in metrics.items()
        },
        "comparisons": comps,
        "curation": curation.get("summary", {}),
        "reading": honest_reading(metrics, curation, comps),
        "chance": CHANCE,
    }


def _prepare(cfg: DemoConfig) -> Any:
    cfg.out = Path(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not os.access(cfg.out, os.W_OK):
        raise DemoError(f"output directory is not writable: {cfg.out}")
    recipe = load_recipe(cfg)  # fail before any work when the recipe is missing or malformed
    if cfg.overwrite:
        clear_outputs(cfg.out)
    return recipe


def _prepare_parts(recipe: Any, cb: StepHooks) -> None:
    """Convert the recipe's packaged pretrained parts once (the wheel's GGUF LM: about a minute), as a
    step of its own so the pause shows; later runs find them ready and skip it."""
    from sparrow.model.packaged import prepare_packaged

    mcfg = recipe.model_config()
    if mcfg is not None:
        prepare_packaged(mcfg, on_start=lambda part: cb.start(f"prepare {part.name} (once)"))


def run_demo(cfg: DemoConfig, callbacks: StepHooks | None = None) -> dict[str, Any]:
    """Run (or resume) the whole demo; returns a summary with the report's path and the key metrics."""
    cb = callbacks or StepHooks()
    recipe = _prepare(cfg)
    _prepare_parts(recipe, cb)
    steps = Steps(cfg.out, cb)
    world = cfg.out / "world"
    keys = _step_keys(cfg, recipe)
    steps.check(keys)

    steps.run("world", keys["world"], [world / "bench_test.jsonl"], lambda: str(make_world(cfg, cb)))
    synth = steps.run(
        "synth", keys["synth"], [world / "synth" / "samples.jsonl"], lambda: make_synth(cfg, world, cb)
    )

    def train_all() -> dict[str, Any]:
        if cfg.reference:
            make_reference(cfg, recipe)
        return train_runs(cfg, world, cb)

    finals = [cfg.out / "runs" / MAIN_RUN / "final" / "config.json"]
    if cfg.baseline:
        finals.append(cfg.out / "runs" / BASELINE_RUN / "final" / "config.json")
    train = steps.run("train", keys["train"], finals, train_all)
    names = list(checkpoints(cfg))
    metrics = steps.run(
        "eval",
        keys["eval"],
        [cfg.out / "eval" / n / c / "metrics.json" for n in names for c in CONDITIONS],
        lambda: evaluate_all(cfg, world, cb),
    )
    curation = steps.run(
        "curate",
        keys["curate"],
        [cfg.out / "curate" / "curation.json"],
        lambda: curate_all(cfg, list(metrics), cb),
    )
    cb.start("report")
    comps = comparisons(cfg, metrics)
    timings = dict(steps.timings)
    report = write_report(cfg, world, metrics, curation, timings, comps)
    parts = {"report": report, "timings": timings, "synth": synth, "train": train, "comparisons": comps}
    summary = _summary(cfg, parts, metrics, curation)
    atomic_write_text(cfg.out / "summary.json", json.dumps(summary, indent=2, default=json_default) + "\n")
    return summary
