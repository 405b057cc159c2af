"""``sparrow flywheel`` end to end on a small world: round 0 through an OpenAI-compatible test server on
loopback, one captioner round with a tiny model trained for a few steps, the per-round table, report,
resume and the refusal of a changed run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import completion, openai_app

from sparrow.captions import Line
from sparrow.flywheel.config import FlywheelConfig, FlywheelError
from sparrow.flywheel.data import split_videos
from sparrow.flywheel.narrated import segment
from sparrow.flywheel.run import flywheel
from sparrow.jobs.hooks import StepHooks
from sparrow.refine.collect import CAPTION_QUESTION
from sparrow.refine.config import RefineConfig
from sparrow.refine.prompts import NO_CAPTION
from sparrow.serve.server import ServerThread
from sparrow.video import probe
from sparrow.world.config import preset_config
from sparrow.world.generate import generate_world

pytestmark = pytest.mark.usefixtures("one_thread")

WORLD = dict(
    videos={"train": 6, "val": 0, "test": 0},
    long_videos={"train": 0, "val": 0, "test": 0},
    short_seconds=(4, 6),
    fps_choices=(10,),
    corpus_docs={"train": 0, "val": 0, "test": 0},
    size=64,
)


def cleaner(calls: list[str]):
    """A stand-in LLM: keeps the timed transcript lines that describe something, drops the chatter."""
    from sparrow.world.transcripts import CHATTER

    def chat(body: dict):
        user = body["messages"][-1]["content"]
        calls.append(user)
        block = user.split("Transcript:")[-1]
        lines = [
            f"{m.group(1)}s: {m.group(2).capitalize()}."
            for m in re.finditer(r"^(\d+)s: (.+)$", block, re.M)
            if m.group(2) not in CHATTER
        ]
        return completion("\n".join(lines), 20, 10)

    return openai_app("cleaner", chat)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fw") / "world"
    generate_world(out, config=preset_config("tiny", 3, **WORLD), workers=1)
    return out


def test_split_is_seeded_disjoint_and_leaves_videos_to_score():
    ids = [f"v{i}" for i in range(20)]
    human, scored = split_videos(ids, 0.1, seed=0)
    assert len(human) == 2 and len(scored) == 18 and not set(human) & set(scored)
    assert split_videos(ids, 0.1, seed=0) == (human, scored)
    assert split_videos(ids, 0.1, seed=1) != (human, scored)
    assert split_videos(ids[:2], 0.9, seed=0)[1]  # at least one video is always scored


def test_flywheel_end_to_end_resume_and_refusal(world, tmp_path):
    calls: list[str] = []
    steps: list[str] = []
    with ServerThread(cleaner(calls)) as server:
        refine = RefineConfig(backend="openai", base_url=server.url, retries=0)
        cfg = FlywheelConfig(
            rounds=1, videos=6, human_share=0.34, steps=2, max_new_tokens=4, vendi=False, refine=refine
        )
        rows = flywheel(world, tmp_path / "fw", cfg, hooks=StepHooks(step=steps.append))
        out = tmp_path / "fw"
        assert [r.name for r in rows] == ["asr", "round-0", "round-1"]
        # two human videos: their ground truth is the few-shot example and the fine-tuning data, never scored
        reference = json.loads((out / "data" / "reference.json").read_text())
        human = [
            json.loads(x)["meta"]["video_id"] for x in (out / "data" / "human.jsonl").read_text().splitlines()
        ]
        assert len(reference) == 4 and set(human) and not set(human) & set(reference)
        assert len(calls) == 4  # one block per scored video (short videos)
        # round 0: the chatter is gone, so it beats the raw transcripts on every scored video's CIDEr-D
        asr, r0, r1 = rows
        assert r0.quality["videos"] == 4 and r0.vs_asr is not None and r0.vs_asr["videos"] == 4
        assert r0.quality["cider_d"] > asr.quality["cider_d"]
        assert r0.quantity["captions"] < asr.quantity["captions"]
        # round 1: the captioner is trained on the transcript lines paired with round 0's captions (chatter
        # with "No caption."), reads each line and sees its clip, and captions every line again
        pairs = [json.loads(x) for x in (out / "data" / "captioner-1.jsonl").read_text().splitlines()]
        asked = pairs[0]["messages"][0]["content"]
        assert asked.startswith("<video>\nThe narrator says: ") and asked.endswith(CAPTION_QUESTION)
        assert {p["messages"][1]["content"] for p in pairs} & {NO_CAPTION}  # the chatter lines
        assert all(p["media"][0]["path"].startswith("videos/") for p in pairs)
        human_pairs = (out / "data" / "human-pairs.jsonl").read_text().splitlines()
        assert human_pairs and all(json.loads(x)["meta"]["video_id"] in human for x in human_pairs)
        asr = json.loads((out / "data" / "asr.json").read_text())
        c1 = json.loads((out / "round-1" / "caption.json").read_text())
        assert set(c1) == set(asr)
        for v in c1:  # every caption is timed on the clip of one of its transcript lines
            duration = probe(out / "data" / "videos" / f"{v}.mp4").duration
            clips = {segment(Line(*x), duration) for x in zip(*asr[v].values(), strict=True)}
            assert set(zip(c1[v]["start"], c1[v]["end"], strict=True)) <= clips
        summary = json.loads((out / "round-1" / "summary.json").read_text())
        assert summary["captions"] + summary["dropped"] == sum(len(x["text"]) for x in asr.values())
        assert r1.vs_asr is not None and r1.vs_round0 is not None and r1.source == "captioner (round 0)"
        assert (out / "round-1" / "captioner" / "final" / "config.json").is_file()
        # the table and the report
        table = json.loads((out / "rounds.json").read_text())
        assert [r["name"] for r in table] == ["asr", "round-0", "round-1"]
        page = (out / "report.html").read_text()
        assert "round-1" in page and "CIDEr-D" in page and "data:image/png;base64" in page
        assert any("round 1" in s for s in steps)
        # a second run resumes: nothing is asked again, the rows are the same
        n = len(calls)
        again = flywheel(world, out, cfg)
        assert len(calls) == n and [r.to_dict() for r in again] == [r.to_dict() for r in rows]
        with pytest.raises(FlywheelError, match="other settings"):
            flywheel(
                world,
                out,
                FlywheelConfig(rounds=2, videos=6, human_share=0.34, steps=2, vendi=False, refine=refine),
            )


def test_bad_world_and_bad_settings(tmp_path):
    with pytest.raises(FlywheelError, match="world folder not found"):
        flywheel(tmp_path / "nothing", tmp_path / "out", FlywheelConfig(vendi=False))
    (tmp_path / "w").mkdir()
    with pytest.raises(FlywheelError, match="ASR transcripts not found"):
        flywheel(tmp_path / "w", tmp_path / "out2", FlywheelConfig(vendi=False))
    with pytest.raises(FlywheelError, match="loss must be one of"):
        FlywheelConfig(loss="mse").validate()
