"""Tiny training data and recipes for the training tests (text, frame sequences, a couple of videos).

The tasks are learnable by a tiny random model in a few steps: arithmetic answers for text records and
the colour of solid-colour frames, so a short run's loss falls clearly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = REPO / "configs" / "tiny" / "model.yaml"
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def write_jsonl(path: Path, rows: list[dict[str, Any]], extra_lines: list[str] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def text_record(i: int, rng: random.Random) -> dict[str, Any]:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    return {
        "id": f"text-{i}",
        "messages": [
            {"role": "user", "content": f"What is {a} plus {b}?"},
            {"role": "assistant", "content": f"{a} plus {b} is {a + b}."},
        ],
        "source": "text",
    }


def make_data(root: Path, n_text: int = 24, n_frames: int = 12, videos: int = 0) -> Path:
    """Write ``text.jsonl`` and ``frames.jsonl`` (plus ``videos.jsonl`` when ``videos``) under ``root``.

    ``frames.jsonl`` ends with one malformed line and one record whose frame file is missing, so runs
    always meet a bad line (index time) and a bad sample (processing time)."""
    rng = random.Random(0)
    write_jsonl(root / "text.jsonl", [text_record(i, rng) for i in range(n_text)])
    frames = []
    names = list(COLOURS)
    for i in range(n_frames):
        name = names[i % 3]
        paths = []
        for j in range(2):
            p = root / "frames" / f"f{i}" / f"{j}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), COLOURS[name], np.uint8)).save(p)
            paths.append(f"frames/f{i}/{j}.png")
        frames.append(
            {
                "id": f"frames-{i}",
                "messages": [
                    {"role": "user", "content": "<video>\nWhat colour is the video?"},
                    {"role": "assistant", "content": f"The video is {name}."},
                ],
                "media": [{"type": "frames", "paths": paths, "timestamps": None}],
                "source": "frames",
            }
        )
    missing = {
        "id": "frames-missing",
        "messages": [{"role": "user", "content": "<video>\nq"}, {"role": "assistant", "content": "a"}],
        "media": [{"type": "frames", "paths": ["frames/none/0.png"], "timestamps": None}],
    }
    write_jsonl(root / "frames.jsonl", [*frames, missing], ['{"id": "broken", "messages": []}'])
    if videos:
        from media import write_video

        rows = []
        (root / "videos").mkdir(exist_ok=True)
        for i in range(videos):
            write_video(root / "videos" / f"v{i}.mp4", num_frames=20, fps=10, width=32, height=32)
            rows.append(
                {
                    "id": f"video-{i}",
                    "messages": [
                        {"role": "user", "content": "<video>\nHow long is the video?"},
                        {"role": "assistant", "content": "Two seconds."},
                    ],
                    "media": [{"type": "video", "path": f"videos/v{i}.mp4"}],
                    "source": "video",
                }
            )
        write_jsonl(root / "videos.jsonl", rows)
    return root


def model_config(dropout: float = 0.0) -> dict[str, Any]:
    """The tiny model config (configs/tiny/model.yaml), optionally with attention dropout so that
    resumed runs must restore the RNG to match."""
    import yaml

    cfg = yaml.safe_load(TINY_MODEL.read_text(encoding="utf-8"))
    cfg["lm"]["config"]["attention_dropout"] = dropout
    cfg["sampling"]["max_frames"] = 4
    return cfg


def stage(
    name: str, trainable: list[str], steps: int, sources: list[dict[str, Any]], **kw: Any
) -> dict[str, Any]:
    d = {
        "name": name,
        "trainable": trainable,
        "lr": {p: 3e-3 for p in trainable},
        "mixture": sources if isinstance(sources, dict) else {"sources": sources, "seed": 0},
        "steps": steps,
        "batch_size": 4,
        "micro_batch_size": 2,
        "seq_length": 256,
        "warmup_ratio": 0.0,
    }
    d.update(kw)
    return d
