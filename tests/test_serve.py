"""``sparrow serve`` on loopback with a tiny random checkpoint, called through the ``openai`` backend;
a test server that answers 429 with Retry-After checks the retries."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from conftest import completion, openai_app, served_checkpoint
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from PIL import Image

from sparrow.chat.base import BackendError, Decoding, Message, Request, VideoRef
from sparrow.chat.openai import OpenAIBackend, OpenAIConfig, retry_after
from sparrow.chat.sparrow import SparrowBackend, SparrowConfig
from sparrow.serve import ServeConfig, create_app
from sparrow.serve.server import ServerThread


def png(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    served_checkpoint(d)
    from media import write_video

    write_video(d / "outside.mp4", num_frames=10, fps=10, width=32, height=32)
    backend = SparrowBackend(SparrowConfig(str(d / "ckpt")))
    app = create_app(backend, ServeConfig(video_root=str(d / "videos"), max_tokens=8))
    with ServerThread(app) as server:
        yield d, server


def ask(text: str, **kw) -> Request:
    return Request((Message("user", text, **kw),), Decoding(max_tokens=6))


def test_models_and_chat_through_the_openai_backend(setup):
    d, server = setup
    client = OpenAIBackend(OpenAIConfig(base_url=server.url, concurrency=2, retries=0))
    assert client.model == "ckpt"  # the first model the server lists
    video = VideoRef(str(d / "videos" / "a.mp4"), 0.0, 1.5)
    out = client.complete(
        [ask("Say something."), ask("What colour?", images=(png(),)), ask("What happens?", video=video)]
    )
    assert [r.error for r in out] == [None, None, None]
    assert all(r.calls == 1 and r.completion_tokens <= 6 for r in out)
    # greedy decoding: the same request gives the same reply
    assert client.complete([ask("Say something.")])[0].text == out[0].text
    client.close()


def test_serve_refuses_videos_outside_its_root(setup):
    d, server = setup
    client = OpenAIBackend(
        OpenAIConfig(base_url=server.url, retries=3), sleep=lambda s: pytest.fail("retried")
    )
    for path in (str(d / "outside.mp4"), "../outside.mp4", f"file://{d / 'outside.mp4'}"):
        r = client.complete([ask("q", video=VideoRef(path))])[0]
        assert r.error is not None and r.error.startswith("HTTP 403") and r.calls == 1
    assert client.complete([ask("q", video=VideoRef("missing.mp4"))])[0].error.startswith("HTTP 400")
    bad_image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}
    r = httpx.post(f"{server.url}/chat/completions", json={"messages": [bad_image]})
    assert r.status_code == 400 and "data URLs" in r.json()["error"]["message"]
    r = httpx.post(
        f"{server.url}/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}], "temperature": 0.7},
    )
    assert r.status_code == 400 and "greedily" in r.json()["error"]["message"]
    client.close()


def test_streaming_gives_the_same_text(setup):
    _, server = setup
    body = {"model": "ckpt", "messages": [{"role": "user", "content": "Say something."}], "max_tokens": 6}
    whole = httpx.post(f"{server.url}/chat/completions", json=body).json()
    assert whole["object"] == "chat.completion" and whole["usage"]["completion_tokens"] <= 6
    with httpx.stream("POST", f"{server.url}/chat/completions", json={**body, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]


# ------------------------------------------------------------------------------------------- retries


def flaky_app(failures: list[tuple[int, dict[str, str]]], seen: list[dict]) -> FastAPI:
    """Answers each POST with the next (status, headers) of ``failures``, then succeeds."""

    def chat(body: dict):
        seen.append(body)
        if failures:
            status, headers = failures.pop(0)
            return JSONResponse({"error": {"message": "slow down"}}, status_code=status, headers=headers)
        if body["messages"][0]["content"] == "garbage":
            return JSONResponse({"choices": []})
        return completion("12s: A red circle enters.", 5, 7)

    return openai_app("flaky", chat)


def test_retries_honour_retry_after_then_succeed():
    seen: list[dict] = []
    waits: list[float] = []
    app = flaky_app([(429, {"Retry-After": "3"}), (503, {})], seen)
    with ServerThread(app) as server:
        client = OpenAIBackend(OpenAIConfig(base_url=server.url, retries=4, backoff=0.5), sleep=waits.append)
        r = client.complete([Request((Message("user", "hi"),), Decoding(max_tokens=9), seed=7)])[0]
        assert r.error is None and r.text == "12s: A red circle enters." and r.calls == 3
        assert (r.prompt_tokens, r.completion_tokens) == (5, 7)
        assert waits[0] >= 3.0  # Retry-After is a floor
        assert 0.0 <= waits[1] <= 1.0  # second attempt: full jitter up to 0.5 * 2
        assert seen[-1]["seed"] == 7 and seen[-1]["max_tokens"] == 9 and seen[-1]["model"] == "flaky"
        garbage = client.complete([Request((Message("user", "garbage"),))])[0]
        assert garbage.error.startswith("unreadable reply") and garbage.calls == 1
        client.close()
    with ServerThread(flaky_app([(500, {})] * 10, [])) as server:
        client = OpenAIBackend(
            OpenAIConfig(base_url=server.url, retries=2, max_backoff=0.01), sleep=waits.append
        )
        r = client.complete([Request((Message("user", "hi"),))])[0]
        assert r.calls == 3 and r.error.startswith("gave up after 3 attempts: HTTP 500")
        client.close()


def test_retry_after_forms_and_the_api_key_from_the_environment():
    assert retry_after("2") == 2.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    seen_auth: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_auth.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    cfg = OpenAIConfig(base_url="http://api.test/v1", model="m", api_key_env="TEST_KEY")
    client = OpenAIBackend(cfg, env={"TEST_KEY": "sk-123"}, transport=httpx.MockTransport(handler))
    assert client.complete([Request((Message("user", "x"),))])[0].text == "ok"
    assert seen_auth == ["Bearer sk-123"]
    with pytest.raises(BackendError, match="TEST_KEY"):
        OpenAIBackend(cfg, env={})


def test_refine_with_the_sparrow_backend_sends_each_block_segment(setup, tmp_path, monkeypatch):
    from sparrow.caption_metrics import TrinityConfig
    from sparrow.chat import sparrow as sparrow_backend
    from sparrow.refine.config import RefineConfig
    from sparrow.refine.run import refine

    d, _ = setup
    seen = []
    real = sparrow_backend.to_sample

    def spy(messages, image_dir, sample_id="request"):
        sample = real(messages, image_dir, sample_id)
        seen.append(sample.media)
        return sample

    monkeypatch.setattr(sparrow_backend, "to_sample", spy)
    (tmp_path / "caption.json").write_text(
        json.dumps({"a": {"start": [0.2], "end": [1.4], "text": ["hello"]}})
    )
    cfg = RefineConfig(
        backend="sparrow", model=str(d / "ckpt"), see_video=True, max_tokens=4, cache=str(tmp_path / "c")
    )
    s = refine(
        tmp_path / "caption.json", d / "videos", tmp_path / "out", cfg, trinity=TrinityConfig(vendi=False)
    )
    assert (s.ok, s.failed) == (1, 0)
    media = seen[0][0]
    assert media.type == "video" and media.path == str((d / "videos" / "a.mp4").resolve())
    assert (media.start, media.end) == (0.0, 2.0)  # the block's window
