"""The tower probe: can a linear classifier read the world's per-frame ground truth from a frozen
vision tower's features, per layer and per image size?

Frames come from a generated world (``sparrow world``): its train videos fit the probe, its test videos
(other scenes) measure it. Each frame's labels are exact, from the scene plan the world is rebuilt from
(``world.json``), with the frame captions' notion of "in view" (a shape whose centre is inside the frame):

=========  ================================================  =============================
task       label                                             frames
=========  ================================================  =============================
colour     the colour of the one shape in view               frames with exactly one shape
shape      the kind of that shape (circle, square, ...)      frames with exactly one shape
word       whether a word is shown (yes / no)                every frame
count      how many shapes are in view (0 to 5)              every frame
=========  ================================================  =============================

Each (task, layer, size) gets a logistic regression on standardised, pooled features (mean and max over
the grid by default) and its held-out accuracy next to the majority baseline (the most common training
label, scored on the held-out frames). ``probe_tower`` is the library call; ``write_probe`` writes
``probe.json``, ``probe.md`` and ``probe.png``.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparrow.eval.probe_features import ProbeError, frame_features, resolve_tower, tower_layers

TASKS = ("colour", "shape", "word", "count")


@dataclass
class ProbeConfig:
    """What ``probe_tower`` measures. ``layers`` None: every layer the tower has (``tower_layers``)."""

    layers: tuple[str, ...] | None = None
    sizes: tuple[int, ...] = (64, 128)
    tasks: tuple[str, ...] = TASKS
    frames_per_video: int = 8  # Frames per video, spread evenly over it.
    train_videos: int | None = None  # At most this many train videos fit the probe (default: all).
    test_videos: int | None = None  # At most this many test videos measure it (default: all).
    pool: str = "meanmax"  # How a layer's grid becomes one vector per frame: mean, max or meanmax (both).
    c: float = 1.0  # Inverse L2 strength of the logistic regression.
    seed: int = 0  # Seed of the video subsets and of a tower's random initial weights.
    batch_size: int = 32  # Frames per forward pass of the tower.

    def validate(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ProbeError(f"tasks must be some of {', '.join(TASKS)} (got {bad or 'none'})")
        if not self.sizes or min(self.sizes) < 8:
            raise ProbeError("sizes must be one or more frame sides of at least 8 px")
        if self.frames_per_video < 1 or self.c <= 0:
            raise ProbeError("frames_per_video must be at least 1 and c above 0")


@dataclass
class ProbeRow:
    task: str
    layer: str
    size: int
    accuracy: float  # held-out
    majority: float  # held-out accuracy of always answering the commonest training label
    train_accuracy: float
    n_train: int
    n_test: int
    classes: int


@dataclass
class ProbeReport:
    tower: str
    world: str
    config: ProbeConfig
    rows: list[ProbeRow] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)  # pooled feature size per layer

    def to_dict(self) -> dict[str, Any]:
        return {
            "tower": self.tower,
            "world": self.world,
            "config": asdict(self.config),
            "dims": self.dims,
            "rows": [asdict(r) for r in self.rows],
        }

    def row(self, task: str, layer: str, size: int) -> ProbeRow:
        return next(r for r in self.rows if (r.task, r.layer, r.size) == (task, layer, size))

    def best(self, task: str) -> ProbeRow:
        """The (layer, size) with the highest held-out accuracy on ``task`` (the shallower on a tie)."""
        return max((r for r in self.rows if r.task == task), key=lambda r: r.accuracy)

    def table(self) -> str:
        """A Markdown table: one line per task, layer and size."""
        lines = [
            "| task | layer | size | held-out accuracy | majority | gain | train accuracy | train / test |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.task} | {r.layer} | {r.size} | {r.accuracy:.3f} | {r.majority:.3f} | "
                f"{r.accuracy - r.majority:+.3f} | {r.train_accuracy:.3f} | {r.n_train} / {r.n_test} |"
            )
        return "\n".join(lines)


# ----------------------------------------------------------------------------------- ground truth


def world_scenes(world_dir: str | os.PathLike) -> dict[str, Any]:
    """``{video_id: Scene}`` of a generated world, re-planned from its ``world.json`` settings."""
    from sparrow.world.config import WorldConfig, WorldError
    from sparrow.world.generate import plan_world

    path = Path(world_dir) / "world.json"
    if not path.is_file():
        raise ProbeError(
            f"{world_dir} is not a generated world (no world.json); make one with `sparrow world`"
        )
    try:
        cfg = WorldConfig.from_dict(json.loads(path.read_text(encoding="utf-8"))["settings"])
    except (KeyError, ValueError, TypeError, WorldError) as e:
        raise ProbeError(f"{path}: cannot read the world's settings ({str(e).splitlines()[0]})") from None
    return {s.video_id: s for s in plan_world(cfg)}


def frame_truth(scene: Any, t: float) -> dict[str, str | None]:
    """The labels of the frame shown at ``t``: ``colour`` and ``shape`` of the only shape in view (None
    when there are none or several), ``word`` (yes / no) and ``count``."""
    in_view = []
    for o in scene.objects:
        p = o.position(t)
        if p is not None and 0 <= p[0] < scene.size:
            in_view.append(o)
    one = in_view[0] if len(in_view) == 1 else None
    return {
        "colour": one.colour if one else None,
        "shape": one.shape if one else None,
        "word": "yes" if any(w.shown(t) for w in scene.words) else "no",
        "count": str(len(in_view)),
    }


def _videos(world: Path, scenes: dict[str, Any], split: str, limit: int | None, seed: int) -> list[str]:
    ids = sorted(v for v, s in scenes.items() if s.split == split and (world / f"videos/{v}.mp4").is_file())
    if limit is not None and len(ids) > limit:
        ids = sorted(random.Random(f"sparrow-probe/{seed}/{split}").sample(ids, limit))
    return ids


def load_frames(
    world: Path, scenes: dict[str, Any], ids: Sequence[str], size: int, per_video: int
) -> tuple[np.ndarray, list[dict[str, str | None]]]:
    """Frames ``(N, size, size, 3)`` of the videos (``per_video`` each, spread evenly, decoded as the
    model's processor decodes them) and each frame's labels (at its own index / fps)."""
    from sparrow.video import Uniform, sample

    frames, labels = [], []
    for vid in ids:
        scene = scenes[vid]
        clip = sample(world / f"videos/{vid}.mp4", Uniform(per_video), size=(size, size))
        for frame, index in zip(clip.frames, clip.indices, strict=True):
            frames.append(np.asarray(frame))
            labels.append(frame_truth(scene, index / scene.fps))
    return np.stack(frames), labels


# ---------------------------------------------------------------------------------------- fitting


def fit_probe(
    x_train: np.ndarray, y_train: Sequence[str], x_test: np.ndarray, y_test: Sequence[str], c: float = 1.0
) -> tuple[float, float, float]:
    """(held-out accuracy, majority baseline, train accuracy) of a logistic regression on standardised
    features. One training class: the probe is that constant."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    commonest = Counter(y_train.tolist()).most_common(1)[0][0]
    majority = float(np.mean(y_test == commonest))
    if len(set(y_train.tolist())) < 2:
        return majority, majority, 1.0
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(scaler.transform(x_train), y_train)
    test = float(np.mean(clf.predict(scaler.transform(x_test)) == y_test))
    train = float(np.mean(clf.predict(scaler.transform(x_train)) == y_train))
    return test, majority, train


def _task_rows(
    task: str, feats: tuple[dict, dict], labels: tuple[list, list], size: int, cfg: ProbeConfig
) -> list[ProbeRow]:
    (f_train, f_test), (l_train, l_test) = feats, labels
    i_train = [i for i, lab in enumerate(l_train) if lab[task] is not None]
    i_test = [i for i, lab in enumerate(l_test) if lab[task] is not None]
    if not i_train or not i_test:
        return []
    y_train, y_test = [l_train[i][task] for i in i_train], [l_test[i][task] for i in i_test]
    rows = []
    for layer in f_train:
        acc, maj, train = fit_probe(f_train[layer][i_train], y_train, f_test[layer][i_test], y_test, cfg.c)
        rows.append(
            ProbeRow(task, layer, size, acc, maj, train, len(i_train), len(i_test), len(set(y_train)))
        )
    return rows


def probe_tower(
    tower: Any,
    world_dir: str | os.PathLike,
    layers: Sequence[str] | None = None,
    sizes: Sequence[int] | None = None,
    config: ProbeConfig | None = None,
) -> ProbeReport:
    """Probe ``tower`` (anything ``resolve_tower`` takes: a packaged tower's name, a model YAML, a
    checkpoint folder, a config or a module) on the world in ``world_dir``: train videos fit, test videos
    measure. ``layers`` / ``sizes`` override the config's. Deterministic for a given config and thread
    count."""
    cfg = config or ProbeConfig()
    if layers is not None:
        cfg.layers = tuple(layers)
    if sizes is not None:
        cfg.sizes = tuple(int(s) for s in sizes)
    cfg.validate()
    world = Path(world_dir)
    scenes = world_scenes(world)
    ids = {
        "train": _videos(world, scenes, "train", cfg.train_videos, cfg.seed),
        "test": _videos(world, scenes, "test", cfg.test_videos, cfg.seed),
    }
    if not ids["train"] or not ids["test"]:
        raise ProbeError(f"{world} needs train and test videos for the probe")
    with torch.random.fork_rng(devices=[]):
        # A tower built from a model YAML starts from random weights: the same ones every run.
        torch.manual_seed(cfg.seed)
        module = resolve_tower(tower)
    chosen = list(cfg.layers) if cfg.layers else tower_layers(module)
    report = ProbeReport(
        str(tower) if isinstance(tower, (str, os.PathLike)) else type(module).__name__, str(world), cfg
    )
    for size in cfg.sizes:
        frames, labels, feats = {}, {}, {}
        for split in ("train", "test"):
            frames[split], labels[split] = load_frames(world, scenes, ids[split], size, cfg.frames_per_video)
            feats[split] = frame_features(module, frames[split], chosen, cfg.pool, cfg.batch_size)
        report.dims.update({layer: int(f.shape[1]) for layer, f in feats["train"].items()})
        for task in cfg.tasks:
            report.rows += _task_rows(
                task, (feats["train"], feats["test"]), (labels["train"], labels["test"]), size, cfg
            )
    return report


def write_probe(report: ProbeReport, out: str | os.PathLike) -> dict[str, Path]:
    """``probe.json`` (everything), ``probe.md`` (the table) and ``probe.png`` (held-out accuracy per
    layer, one series per task and size) in ``out``."""
    from sparrow.io import atomic_write_text
    from sparrow.report import bar_chart

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "probe.json", "md": out / "probe.md", "png": out / "probe.png"}
    atomic_write_text(files["json"], json.dumps(report.to_dict(), indent=2) + "\n")
    head = f"# Tower probe: {report.tower} on {report.world}\n\nHeld-out accuracy against the majority baseline.\n\n"
    atomic_write_text(files["md"], head + report.table() + "\n")
    groups: dict[str, dict[str, float]] = {}
    for r in report.rows:
        groups.setdefault(f"{r.task} {r.size}px", {})[r.layer] = r.accuracy
    bar_chart(groups, files["png"], "Probe accuracy per layer (held out)")
    return files
