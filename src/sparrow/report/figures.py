"""Figures for reports and run directories, drawn to PNG files through ``sparrow.plots.pyplot()``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.plots import pyplot


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure to a PNG (folders made as needed) and close it."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def loss_curve(steps: Sequence[int], losses: Sequence[float], path: str | os.PathLike, title: str) -> Path:
    """A training loss curve (loss per supervised token against the optimizer step)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(list(steps), list(losses), lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (per supervised token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def save_frame_strip(
    frames: Sequence[Any], labels: Sequence[str], path: str | os.PathLike, scale: int = 2
) -> Path:
    """Save frames (H×W×3 uint8 arrays) side by side with a label under each, as one PNG."""
    plt = pyplot()
    n = max(1, len(frames))
    fig, axes = plt.subplots(1, n, figsize=(1.6 * scale * n / 2 + 0.4, 1.9 * scale / 2 + 0.5), squeeze=False)
    for ax, frame, label in zip(axes[0], frames, labels, strict=False):
        ax.imshow(frame)
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def bar_chart(
    groups: dict[str, dict[str, float]],
    path: str | os.PathLike,
    title: str,
    ylabel: str = "accuracy",
    chance: float | None = None,
    errors: dict[str, dict[str, tuple[float, float]]] | None = None,
) -> Path:
    """Grouped bars: ``groups[series][category] = value``; optional (low, high) error bars and a chance line."""
    plt = pyplot()
    series = list(groups)
    cats = sorted({c for g in groups.values() for c in g})
    x = np.arange(len(cats))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(cats) + 2), 3.8))
    for i, name in enumerate(series):
        vals = [groups[name].get(c, np.nan) for c in cats]
        yerr = None
        if errors and name in errors:
            lo = [vals[j] - errors[name].get(c, (vals[j], vals[j]))[0] for j, c in enumerate(cats)]
            hi = [errors[name].get(c, (vals[j], vals[j]))[1] - vals[j] for j, c in enumerate(cats)]
            yerr = [np.maximum(lo, 0), np.maximum(hi, 0)]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=name, yerr=yerr, capsize=2)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(x, cats, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path)
