"""``sparrow probe``: linear probes of a frozen vision tower's features on a generated world's per-frame
ground truth, per layer and image size (``sparrow.eval.probe``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.commands._options import config_flags, out_option
from sparrow.eval.probe import TASKS, ProbeConfig
from sparrow.ui import UsageError


def _items(text: str | None, what: str, cast: Any = str) -> tuple | None:
    if text is None or not text.strip():
        return None
    try:
        return tuple(cast(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--{what} takes a comma list (got {text!r})") from None


@config_flags(
    ProbeConfig, skip=("layers", "sizes", "tasks"), minimum={"frames_per_video": 1, "batch_size": 1}
)
def probe_cmd(
    tower: str = typer.Option(
        ...,
        "--tower",
        "-t",
        help="A packaged tower (efficientnet-lite0), a model YAML (e.g. configs/tiny/model.yaml) or a "
        "checkpoint folder (its saved tower).",
    ),
    world: Path = typer.Option(
        ..., "--world", "-w", help="A world `sparrow world` wrote (train and test videos)."
    ),
    out: Path = out_option("Output folder: probe.json, probe.md, probe.png."),
    layers: str = typer.Option(
        None, "--layers", help="Comma list of layers (default: every layer; the first run lists them)."
    ),
    sizes: str = typer.Option("64,128", "--sizes", help="Comma list of frame sides in pixels."),
    tasks: str = typer.Option(",".join(TASKS), "--tasks", help=f"Comma list of {', '.join(TASKS)}."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads."),
    *,
    cfg: ProbeConfig,
) -> None:
    """Can a linear classifier read colour, shape, word and shape count from a frozen tower's features?
    Fits a logistic regression per task, layer and frame size on the world's train videos and reports
    held-out accuracy on its test videos against the majority baseline."""
    import torch

    from sparrow.eval.probe import probe_tower, write_probe
    from sparrow.eval.probe_features import ProbeError
    from sparrow.model.errors import ConfigError
    from sparrow.ui import rows_table, summary_table

    cfg.layers = _items(layers, "layers")
    cfg.sizes = _items(sizes, "sizes", int) or cfg.sizes
    cfg.tasks = _items(tasks, "tasks") or cfg.tasks
    torch.set_num_threads(threads)
    try:
        report = probe_tower(tower, world, config=cfg)
    except (ProbeError, ConfigError, OSError) as e:
        raise UsageError(str(e).splitlines()[0]) from e
    files = write_probe(report, out)
    rows = [
        [r.task, r.layer, r.size, r.accuracy, r.majority, r.accuracy - r.majority, f"{r.n_train}/{r.n_test}"]
        for r in report.rows
    ]
    rows_table(
        f"sparrow probe: {tower}",
        ["task", "layer", "size", "held-out", "majority", "gain", "train/test"],
        rows,
    )
    best = {t: report.best(t) for t in cfg.tasks if any(r.task == t for r in report.rows)}
    summary = {
        f"best {t}": f"{b.layer} @ {b.size}px: {b.accuracy:.3f} (majority {b.majority:.3f})"
        for t, b in best.items()
    }
    summary_table("output", {**summary, **{k: str(v) for k, v in files.items()}})


def register(app: typer.Typer) -> None:
    app.command(name="probe")(probe_cmd)
