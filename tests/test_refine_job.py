"""``sparrow refine`` end to end against an OpenAI-compatible test server on loopback: outputs, per-item
errors, the response cache (a second identical run makes no calls), resume after a kill, dry runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import completion, openai_app
from fastapi import FastAPI

from sparrow.caption_metrics import TrinityConfig
from sparrow.jobs import JobEvent
from sparrow.refine.config import RefineConfig
from sparrow.refine.run import dry_run, refine
from sparrow.serve.server import ServerThread

CAPTIONS = {
    "v0": {
        "start": [0.5, 3.0],
        "end": [2.0, 5.0],
        "text": ["a red circle comes in from the left", "um okay so"],
    },
    "v1": {"start": [1.0], "end": [3.0], "text": ["it says fish"]},
    "broken": {"start": [0], "end": [1]},
    "nofile": {"start": [0], "end": [1], "text": ["the blue square just sits there"]},
}
TRUTH = {
    "v0": {"start": [0.5], "end": [2.0], "text": ["A red circle enters from the left."]},
    "v1": {"start": [1.0], "end": [3.0], "text": ["The word FISH is shown."]},
}


def captioner(calls: list[str]) -> FastAPI:
    """Turns each timed transcript line into a caption, adds one caption timed far outside the block."""

    def chat(body: dict):
        user = body["messages"][-1]["content"]
        calls.append(user)
        lines = [
            f"{m.group(1)}s: {m.group(2).capitalize()}." for m in re.finditer(r"^(\d+)s: (.+)$", user, re.M)
        ]
        return completion("\n".join([*lines, "999s: Far away."]), 10, 5)

    return openai_app("echo", chat)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from media import write_video

    d = tmp_path_factory.mktemp("refine")
    (d / "videos").mkdir()
    for vid in ("v0", "v1"):
        write_video(d / "videos" / f"{vid}.mp4", num_frames=40, fps=10, width=32, height=32)
    (d / "caption.json").write_text(json.dumps(CAPTIONS))
    (d / "truth.json").write_text(json.dumps(TRUTH))
    calls: list[str] = []
    with ServerThread(captioner(calls)) as server:
        yield d, server, calls


def run(d: Path, server: ServerThread, out: str, **kw):
    cfg = RefineConfig(backend="openai", base_url=server.url, retries=0, cache=str(d / "cache"), max_words=5)
    kw.setdefault("reference", d / "truth.json")
    return refine(d / "caption.json", d / "videos", d / out, cfg, trinity=TrinityConfig(vendi=False), **kw)


def test_refine_outputs_errors_and_cache(data):
    d, server, calls = data
    s = run(d, server, "out", records=d / "refined.jsonl")
    out = d / "out"
    assert (s.videos, s.ok, s.failed) == (4, 2, 2)
    errors = {e["id"]: e["reason"] for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}
    assert set(errors) == {"broken", "nofile"} and "'text' must be a list" in errors["broken"]
    assert errors["nofile"].startswith("no video for nofile")
    refined = json.loads((out / "caption.json").read_text())
    assert refined["v0"] == {
        "start": [0.0, 3.0],
        "end": [8.0, 11.0],
        "text": ["A red circle comes in from the left.", "Um okay so."],
    }
    assert len(calls) == 3  # v0 has two blocks of at most 5 words, v1 one
    assert s.dropped == 3 and len((out / "dropped.jsonl").read_text().splitlines()) == 3
    records = [json.loads(x) for x in (d / "refined.jsonl").read_text().splitlines()]
    assert records[0]["media"] == [{"type": "video", "path": "videos/v0.mp4", "start": 0.0, "end": 4.0}]
    assert records[0]["messages"][1]["content"] == "A red circle comes in from the left."
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["calls"] == 3 and ledger["prompt_tokens"] == 30 and ledger["cache_hits"] == 0
    trinity = json.loads((out / "trinity.json").read_text())
    assert trinity["quantity"]["captions"] == 3 and trinity["quality"]["videos"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ledger"] == ledger and summary["failed"] == 2
    # the same settings into a new folder: every reply comes from the cache
    again = run(d, server, "out2", records=d / "refined2.jsonl")
    assert len(calls) == 3 and again.ledger["cache_hits"] == 3 and again.ledger["calls"] == 0
    assert (d / "out2" / "caption.json").read_bytes() == (out / "caption.json").read_bytes()


def test_resume_after_a_kill_gives_the_same_output(data):
    d, server, _ = data
    full = run(d, server, "full", limit=3)

    def kill(event: JobEvent) -> None:
        if event.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(d, server, "killed", limit=3, on_progress=kill)
    assert not (d / "killed" / "caption.json").exists()
    resumed = run(d, server, "killed", limit=3)
    # the first three entries: v0, v1 and the malformed one (reported again, never saved as done)
    assert resumed.resumed == 2 and resumed.videos == full.videos == 3 and resumed.failed == 1
    for name in ("caption.json", "captions.jsonl", "trinity.json"):
        assert (d / "killed" / name).read_bytes() == (d / "full" / name).read_bytes()


def test_dry_run_renders_prompts_without_calls(data):
    d, _, calls = data
    before = len(calls)
    dr = dry_run(d / "caption.json", RefineConfig(max_words=5), limit=1)
    assert len(calls) == before
    assert [p["block"] for p in dr.prompts] == [0, 1] and dr.errors == []
    assert len(dry_run(d / "caption.json", RefineConfig(), limit=3).errors) == 1
    assert "0s: a red circle comes in from the left" in dr.prompts[0]["messages"][-1]["content"]
    assert dr.prompt_tokens > 0 and dr.max_completion_tokens == 2 * 256
