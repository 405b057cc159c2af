"""Step 3: the training runs (the 3-stage recipe and its video-only baseline), the untrained reference,
and the checkpoints the evaluation scores."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from sparrow.demo.config import BASELINE_RUN, MAIN_RUN, REFERENCE, DemoConfig
from sparrow.demo.recipes import load_recipe, video_only_variant
from sparrow.jobs.hooks import StepHooks


def make_reference(cfg: DemoConfig, recipe: Any) -> Path:
    """Save the untrained model: the very model the trainer starts from (``initial_model``: same seed,
    same order), with the last stage's frame sampling (what the final model is evaluated with). A recipe
    that starts from a checkpoint (``init_from``) has that checkpoint as its reference. Evaluated like the
    trained models, it measures the score of knowing nothing."""
    if recipe.init_from:
        return recipe.resolve(recipe.init_from)
    out = cfg.out / "runs" / REFERENCE
    if (out / "config.json").is_file():
        return out
    import torch

    from sparrow.train.data import merge_sampling
    from sparrow.train.initial_model import initial_model

    with torch.random.fork_rng(devices=[]):
        model, processor = initial_model(recipe)
    processor.cfg = dataclasses.replace(
        processor.cfg, sampling=merge_sampling(processor.cfg.sampling, recipe.stages[-1].sampling)
    )
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, processor=processor)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def train_runs(cfg: DemoConfig, world: Path, cb: StepHooks) -> dict[str, dict[str, Any]]:
    """Train the main recipe and (unless ``cfg.baseline`` is off) its video-only variant; each resumes."""
    from sparrow.train.options import RunOptions
    from sparrow.train.trainer import auto_threads, train

    recipe = load_recipe(cfg)
    runs = {MAIN_RUN: recipe}
    if cfg.baseline:
        runs[BASELINE_RUN] = video_only_variant(recipe)
    threads = cfg.threads or auto_threads(recipe.num_workers, 1)
    summaries = {}
    for name, r in runs.items():
        cb.start(f"train {name}")
        opts = RunOptions(
            out=cfg.out / "runs" / name,
            data_root=world,
            resume=True,  # a finished run returns at once; an interrupted one continues exactly
            max_steps=cfg.max_steps,
            progress=cb.train,
            threads=threads,
        )
        summaries[name] = train(r, opts)
    return summaries


def checkpoints(cfg: DemoConfig) -> dict[str, Path]:
    """The models the demo evaluates: the untrained reference, every stage of the main run and the
    baseline's final model."""
    out: dict[str, Path] = {}
    if cfg.reference:
        out[REFERENCE] = make_reference(cfg, load_recipe(cfg))
    main = cfg.out / "runs" / MAIN_RUN
    for stage_dir in sorted(p for p in main.glob("stage*") if (p / "config.json").is_file()):
        out[f"apollo-{stage_dir.name}"] = stage_dir
    baseline = cfg.out / "runs" / BASELINE_RUN / "final"
    if (baseline / "config.json").is_file():
        out[f"{BASELINE_RUN}-final"] = baseline
    return out


def final_name(metrics: dict[str, Any]) -> str:
    """The main run's last stage (the model the demo trained)."""
    stages = [n for n in metrics if n.startswith("apollo-stage")]
    return max(stages, key=lambda n: int(n.split("-")[1][len("stage") :])) if stages else next(iter(metrics))
