"""The report's figures: sampled world frames, synthetic frames and accuracy charts (drawn by
``sparrow.report``, which owns the plotting backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparrow.demo.config import CHANCE, REFERENCE
from sparrow.io import LineError

WORLD_STRIP_FPS = 1.0
WORLD_STRIP_FRAMES = 6


def _clock(t: float) -> str:
    return f"{int(t) // 60:02d}:{int(t) % 60:02d}"


def world_strips(world: Path, figs: Path, count: int = 2) -> list[Path]:
    """The first ``count`` test videos sampled at 1 fps, each frame labelled with its time and index."""
    from sparrow.report import save_frame_strip
    from sparrow.video import Fps, sample

    videos = sorted((world / "videos").glob("test-*.mp4")) or sorted((world / "videos").glob("*.mp4"))
    out = []
    for k, video in enumerate(videos[:count]):
        clip = sample(video, Fps(WORLD_STRIP_FPS, max_frames=WORLD_STRIP_FRAMES), size=128)
        labels = [f"{_clock(t)} (#{i})" for t, i in zip(clip.timestamps, clip.indices, strict=True)]
        out.append(save_frame_strip(list(clip.frames), labels, figs / f"world_frames_{k + 1}.png"))
    return out


def synth_strip(world: Path, figs: Path) -> Path | None:
    """The first four frames of the first synthetic sample, or None when synth wrote none."""
    import numpy as np
    from PIL import Image

    from sparrow.records import read_samples
    from sparrow.report import save_frame_strip

    path = world / "synth" / "samples.jsonl"
    if not path.is_file():
        return None
    for s in read_samples(path):
        if not isinstance(s, LineError) and s.media:
            paths = (s.media[0].paths or [])[:4]
            frames = [np.asarray(Image.open(path.parent / p).convert("RGB")) for p in paths]
            return save_frame_strip(
                frames, [f"frame {i + 1}" for i in range(len(frames))], figs / "synth_frames.png", scale=3
            )
    return None


def accuracy_charts(metrics: dict[str, Any], final: str, figs: Path) -> tuple[Path, Path]:
    """Accuracy per condition for every model, and per category for the trained model with its video,
    without it, with another question's video (swap) and the untrained one, with 95% intervals and the
    chance line."""
    from sparrow.report import bar_chart

    by_condition = {name: {c: by[c]["accuracy"] for c in by} for name, by in metrics.items()}
    errors = {name: {c: tuple(by[c]["ci95"]) for c in by} for name, by in metrics.items()}
    f1 = bar_chart(
        by_condition,
        figs / "accuracy_by_condition.png",
        "Accuracy by condition (95% CI)",
        chance=CHANCE,
        errors=errors,
    )
    series = {f"{final} (video)": (final, "video"), f"{final} (text only)": (final, "text")}
    if "swap" in metrics[final]:
        series[f"{final} (swapped video)"] = (final, "swap")
    if REFERENCE in metrics:
        series[f"{REFERENCE} (video)"] = (REFERENCE, "video")
    cats = {label: metrics[n][c]["by_category"] for label, (n, c) in series.items()}
    f2 = bar_chart(
        {label: {k: v["accuracy"] for k, v in bc.items()} for label, bc in cats.items()},
        figs / "accuracy_by_category.png",
        "Accuracy by category (95% CI)",
        chance=CHANCE,
        errors={label: {k: tuple(v["ci95"]) for k, v in bc.items()} for label, bc in cats.items()},
    )
    return f1, f2
