"""``sparrow refine`` loses nothing when requests fail: the ledger counts failed requests, a failed block
costs only its own captions (and is retried by a re-run), a caption past the video's end goes to
dropped.jsonl, --see-video sends paths a server can open from anywhere, and only 408/429/5xx are
retried."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from conftest import completion, openai_app
from fastapi.responses import JSONResponse

from sparrow.caption_metrics import TrinityConfig
from sparrow.chat.base import Decoding, Message, Request
from sparrow.chat.openai import OpenAIBackend, OpenAIConfig
from sparrow.refine.config import RefineConfig
from sparrow.refine.run import refine
from sparrow.serve.server import ServerThread

# v0's two blocks (at most 5 words each); v0.mp4 lasts 4 s, so a caption at 10 s is past its end.
CAPTIONS = {
    "v0": {"start": [0.5, 3.0], "end": [2.0, 4.0], "text": ["a red circle comes in", "then it says fish"]},
    "late": {"start": [1.0, 10.0], "end": [2.0, 11.0], "text": ["hello", "goodbye"]},
}


def _lines(user: str) -> list[str]:
    return [f"{m.group(1)}s: {m.group(2).capitalize()}." for m in re.finditer(r"^(\d+)s: (.+)$", user, re.M)]


@pytest.fixture()
def data(tmp_path):
    from media import write_video

    (tmp_path / "videos").mkdir()
    for vid in ("v0", "late"):
        write_video(tmp_path / "videos" / f"{vid}.mp4", num_frames=40, fps=10, width=32, height=32)
    (tmp_path / "caption.json").write_text(json.dumps(CAPTIONS))
    return tmp_path


def _run(d, url, out, **cfg):
    cfg = RefineConfig(backend="openai", base_url=url, retries=0, cache=str(d / "cache"), max_words=5, **cfg)
    return refine(
        d / "caption.json", d / "videos", d / out, cfg, trinity=TrinityConfig(vendi=False), workers=1
    )


def test_a_failed_block_keeps_the_videos_other_captions_and_the_ledger_counts_it(data):
    broken = {"on": True}
    calls: list[str] = []

    def chat(body: dict):
        user = body["messages"][-1]["content"]
        calls.append(user)
        if broken["on"] and "fish" in user:
            return JSONResponse({"error": "overloaded"}, status_code=503)
        return completion("\n".join(_lines(user)), 10, 5)

    with ServerThread(openai_app("m", chat)) as server:
        s = _run(data, server.url, "out")
        assert s.ledger["requests"] == 3 and s.ledger["failed"] == 1 and s.failed_blocks == 1
        refined = json.loads((data / "out" / "caption.json").read_text())
        assert refined["v0"]["text"] == ["A red circle comes in."]  # the good block's caption is kept
        dropped = [json.loads(x) for x in (data / "out" / "dropped.jsonl").read_text().splitlines()]
        assert any(
            r["id"] == "v0" and "request failed" in r["reason"] and "HTTP 503" in r["reason"] for r in dropped
        )
        # a re-run retries the failed block only (the good ones come from the cache)
        broken["on"] = False
        before = len(calls)
        again = _run(data, server.url, "out")
        assert len(calls) - before == 1 and again.failed_blocks == 0 and again.ledger["cache_hits"] == 1
        refined = json.loads((data / "out" / "caption.json").read_text())
        assert refined["v0"]["text"] == ["A red circle comes in.", "Then it says fish."]


def echo(body: dict):
    return completion("\n".join(_lines(body["messages"][-1]["content"])), 1, 1)


def fail(body: dict):
    return JSONResponse({"error": "down"}, status_code=500)


def test_when_every_request_fails_the_ledger_still_counts_them(data):
    with ServerThread(openai_app("m", fail)) as server:
        s = _run(data, server.url, "out")
    assert s.captions == 0 and s.ledger["requests"] == 3 and s.ledger["failed"] == 3
    assert json.loads((data / "out" / "ledger.json").read_text())["failed"] == 3


def test_a_caption_past_the_videos_end_goes_to_dropped(data):
    with ServerThread(openai_app("m", echo)) as server:
        _run(data, server.url, "out")
    refined = json.loads((data / "out" / "caption.json").read_text())
    assert refined["late"]["text"] == ["Hello."]
    dropped = [json.loads(x) for x in (data / "out" / "dropped.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in dropped if r["id"] == "late"] == [
        "10s is past the video's end (4s): Goodbye."
    ]


def test_see_video_sends_an_absolute_path_for_a_relative_videos_folder(data, monkeypatch):
    seen: list[str] = []

    def chat(body: dict):
        for part in body["messages"][-1]["content"]:
            if part["type"] == "video_url":
                seen.append(part["video_url"]["url"])
        return completion("0s: Something.", 1, 1)

    monkeypatch.chdir(data)
    with ServerThread(openai_app("m", chat)) as server:
        cfg = RefineConfig(backend="openai", base_url=server.url, retries=0, max_words=5, see_video=True)
        refine("caption.json", "videos", "out", cfg, trinity=TrinityConfig(vendi=False), workers=1)
    assert seen and all(u.startswith("/") and u.endswith(".mp4") for u in seen)
    assert str(data / "videos" / "v0.mp4") in seen


@pytest.mark.parametrize(
    ("status", "calls"), [(400, 1), (404, 1), (409, 1), (422, 1), (408, 3), (429, 3), (500, 3), (507, 3)]
)
def test_only_timeouts_rate_limits_and_server_errors_are_retried(status, calls):
    n = {"posts": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        n["posts"] += 1
        return httpx.Response(status, json={"error": "no"})

    backend = OpenAIBackend(
        OpenAIConfig(base_url="http://test/v1", model="m", retries=2),
        sleep=lambda s: None,
        transport=httpx.MockTransport(handler),
    )
    [resp] = backend.complete([Request((Message("user", "hi"),), Decoding())])
    assert resp.error is not None and f"HTTP {status}" in resp.error
    assert n["posts"] == calls and resp.calls == calls
