"""The small procedural world the world tests share (much smaller than the tiny preset): its settings,
one generated copy per test session, its scene plans and its questions read back from the written files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparrow.mcq import letter_index
from sparrow.world import generate_world, plan_world, preset_config

SMALL = dict(
    videos={"train": 5, "val": 2, "test": 3},
    long_videos={"train": 0, "val": 0, "test": 1},
    short_seconds=(4, 8),
    long_seconds=(30, 36),
    fps_choices=(10, 15, 24, 30),
    long_fps_choices=(10,),
    questions_per_video=6,
    questions_per_long_video=8,
    text_answerable=0.25,
    corpus_docs={"train": 2, "val": 1, "test": 1},
    corpus_words=(150, 300),
)
SEED = 3


def small_config(**kw):
    return preset_config("tiny", SEED, **{**SMALL, **kw})


_generated: dict[Path, Path] = {}


@pytest.fixture(scope="module", name="world")
def world_fixture(tmp_path_factory) -> Path:
    """The small world, generated once per test session (keyed by its base temporary folder) and shared,
    read only, by every module that imports this fixture."""
    base = tmp_path_factory.getbasetemp()
    if base not in _generated:
        out = tmp_path_factory.mktemp("world_a")
        generate_world(out, config=small_config(), workers=1)
        _generated[base] = out
    return _generated[base]


@pytest.fixture(scope="module", name="scenes")
def scenes_fixture() -> dict:
    return {s.video_id: s for s in plan_world(small_config())}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def all_questions(world: Path) -> list[dict]:
    """Benchmark-style rows (plus ``answer_index``) for every split; train ones rebuilt from the QA
    records by parsing the shared multiple-choice prompt."""
    rows = read_jsonl(world / "bench_val.jsonl") + read_jsonl(world / "bench_test.jsonl")
    for r in rows:
        r["answer_index"] = letter_index(r["answer"])
    for rec in read_jsonl(world / "train_video_qa.jsonl"):
        lines = rec["messages"][0]["content"].split("\n")
        options = [line[3:] for line in lines[2:6]]
        assert [line[:3] for line in lines[2:6]] == ["A. ", "B. ", "C. ", "D. "]
        m = rec["meta"]
        rows.append(
            {**m, "id": rec["id"], "video": rec["media"][0]["path"], "question": lines[1], "options": options}
        )
    return rows
