"""Steps 1 and 2: the procedural world, and pseudo-videos synthesized from its text corpus."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparrow.demo.config import DemoConfig
from sparrow.jobs.hooks import StepHooks


def _progress(cb: StepHooks, step: str) -> Callable[[Any], None]:
    """A job's progress events (``done``, ``total``) as the demo's ``advance`` calls."""
    return lambda event: cb.advance(step, event.done, event.total)


def make_world(cfg: DemoConfig, cb: StepHooks) -> Path:
    """Generate the world (videos, benchmarks, text corpus) into ``OUT/world``."""
    from sparrow.world.generate import generate_world

    out = cfg.out / "world"
    cb.start("world")
    generate_world(
        out,
        seed=cfg.seed,
        preset=cfg.preset,
        workers=cfg.workers,
        on_progress=_progress(cb, "world"),
        **cfg.world_overrides,
    )
    return out


def make_synth(cfg: DemoConfig, world: Path, cb: StepHooks) -> dict[str, Any]:
    """Render the world's training corpus as pseudo-videos into ``OUT/world/synth``; returns the summary."""
    from sparrow.render import RenderConfig
    from sparrow.synth import SynthConfig, synthesize

    cb.start("synth")
    config = SynthConfig(
        source="world-corpus",
        render=RenderConfig(
            width=cfg.synth_size, height=cfg.synth_size, font_size=cfg.synth_font_size, margin=10
        ),
    )
    summary = synthesize(
        [world / "corpus_train.jsonl"],
        world / "synth",
        config,
        workers=cfg.workers,
        on_progress=_progress(cb, "synth"),
    )
    return summary.to_dict()
