"""``sparrow serve`` streams a reply token by token: the first chunk reaches the client while the model
is still generating, the chunks join to the reply, errors before the first token keep their status
codes, a client that leaves mid-stream stops the generation, and a fault after the first token ends the
stream with an error event. Also the incremental detokenisation behind it (``Detokenizer``).

Fake models block on events the test sets, so nothing here waits on a sleep."""

from __future__ import annotations

import gc
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from conftest import served_checkpoint

from sparrow.chat.base import Decoding, Message, Request, Response
from sparrow.chat.sparrow import Detokenizer, InputError, SparrowBackend, SparrowConfig
from sparrow.serve import ServeConfig, create_app
from sparrow.serve.server import ServerThread

WAIT = 30.0  # seconds: only reached when something is broken


class Fake:
    """A ChatModel whose reply is ``script(text, should_stop, on_text)``, ``text`` the last message's."""

    greedy_only = False

    def __init__(self, script: Callable[[str, Callable[[], bool], Callable[[str], None]], Response]):
        self.model = "fake"
        self.script = script

    def answer(
        self,
        req: Request,
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Response:
        return self.script(req.messages[-1].text, should_stop or (lambda: False), on_text or (lambda d: None))


def body(text: str = "hi", **kw: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], "stream": True, **kw}


def events(r: httpx.Response) -> Iterator[Any]:
    """The stream's events as they arrive: parsed JSON, or the string ``[DONE]``."""
    for line in r.iter_lines():
        if line.startswith("data: "):
            yield line[6:] if line == "data: [DONE]" else json.loads(line[6:])


def content(chunks: list[Any]) -> list[str]:
    """The content pieces of the chunks after the role chunk."""
    return [
        c["choices"][0]["delta"]["content"]
        for c in chunks[1:]
        if isinstance(c, dict) and c.get("choices") and "content" in c["choices"][0]["delta"]
    ]


def stream(server: ServerThread, text: str = "hi", **kw: Any) -> list[Any]:
    with httpx.stream("POST", f"{server.url}/chat/completions", json=body(text, **kw), timeout=WAIT) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return list(events(r))


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {WAIT} s")
        time.sleep(0.01)


def open_stream(server: ServerThread, text: str) -> socket.socket:
    """A streaming request on a raw socket, so that the test decides when the client leaves."""
    data = json.dumps(body(text)).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    sock = socket.create_connection((server.host, server.port), timeout=WAIT)
    sock.sendall(head.encode() + data)
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    raw = b""
    while marker not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection before {marker!r}: {raw[-300:]!r}"
        raw += chunk
    return raw


def health(server: ServerThread) -> dict[str, Any]:
    return httpx.get(f"http://{server.host}:{server.port}/health", timeout=WAIT).json()


# ------------------------------------------------------------------------ incremental detokenisation


def test_detokenizer_never_splits_a_character_and_joins_to_the_whole_text():
    def utf8(ids: list[int]) -> str:  # one byte a token: the worst case of a byte-level tokenizer
        return bytes(ids).decode("utf-8", errors="replace")

    for text in ("a€b", "🙂 é", "plain"):
        deltas: list[str] = []
        d = Detokenizer(utf8, deltas.append)
        for b in text.encode():
            d.push(b)
        assert d.finish() == text and "".join(deltas) == text
        assert all(deltas) and not any("\ufffd" in x for x in deltas), deltas
    # invalid bytes stay U+FFFD, and an incomplete character at the end is sent as such at the finish
    deltas = []
    d = Detokenizer(utf8, deltas.append)
    for b in b"a\x80b\xe2\x82":
        d.push(b)
    assert deltas == ["a", "\ufffdb"]
    assert d.finish() == "a\ufffdb\ufffd" == "".join(deltas) == utf8(list(b"a\x80b\xe2\x82"))


def test_detokenizer_with_the_tiny_tokenizer_holds_back_split_characters():
    from sparrow.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    text = "A red 🙂 enters, é then 漢字."
    ids = tok.encode(text, add_special_tokens=False)
    partial = [tok.decode(ids[:k]) for k in range(1, len(ids))]
    assert any(p.endswith("\ufffd") for p in partial)  # the emoji and CJK are split over byte tokens
    deltas: list[str] = []
    d = Detokenizer(lambda t: tok.decode(t, skip_special_tokens=True), deltas.append)
    for i in ids:
        d.push(i)
    assert d.finish() == text == "".join(deltas)
    assert not any("\ufffd" in x for x in deltas) and len(deltas) > 5


def test_detokenizer_keeps_its_word_when_a_decoder_rewrites_its_tail():
    pieces = ["a", " ", "."]

    def tidy(ids: list[int]) -> str:  # like clean_up_tokenization_spaces: " ." becomes "."
        return "".join(pieces[i] for i in ids).replace(" .", ".")

    deltas: list[str] = []
    d = Detokenizer(tidy, deltas.append)
    for i in range(3):
        d.push(i)
    # "a " was sent before "." turned it into "a.": what was sent stands, and the rest follows it
    assert d.finish() == "a ." == "".join(deltas) and deltas == ["a", " ", "."]


# ------------------------------------------------------------------------ the real tiny checkpoint


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve_stream")
    backend = SparrowBackend(SparrowConfig(str(served_checkpoint(d))))
    seen: list[str] = []

    class Spy:
        """The backend, recording every piece of text it hands out."""

        model, greedy_only = backend.model, backend.greedy_only

        def answer(self, req, should_stop=None, on_text=None):
            def record(delta: str) -> None:
                seen.append(delta)
                on_text(delta)

            return backend.answer(req, should_stop, record if on_text else None)

    with ServerThread(create_app(Spy(), ServeConfig(max_tokens=8))) as server:
        yield backend, server, seen


def test_answer_hands_out_the_reply_as_it_is_generated(real):
    backend, _, _ = real
    req = Request((Message("user", "Say something."),), Decoding(max_tokens=40))
    deltas: list[str] = []
    resp = backend.answer(req, on_text=deltas.append)
    assert "".join(deltas) == resp.text == backend.answer(req).text and len(deltas) > 1
    asked = iter(range(1000))
    deltas = []
    cut = backend.answer(req, should_stop=lambda: next(asked) >= 6, on_text=deltas.append)
    assert cut.completion_tokens == 6 and "".join(deltas) == cut.text  # stopped early, still whole


def test_streamed_chunks_are_the_models_pieces_and_join_to_the_reply(real):
    _, server, seen = real
    for text in ("Say something.", "What colour is the ball?"):
        whole = httpx.post(
            f"{server.url}/chat/completions",
            json={**body(text, max_tokens=24), "stream": False},
            timeout=WAIT,
        ).json()
        seen.clear()
        chunks = stream(server, text, max_tokens=24, stream_options={"include_usage": True})
        assert chunks[-1] == "[DONE]" and chunks[0]["choices"][0]["delta"] == {
            "role": "assistant",
            "content": "",
        }
        pieces = content(chunks)
        assert "".join(pieces) == whole["choices"][0]["message"]["content"]
        assert pieces == [d for d in seen if d] and len(pieces) > 1  # one chunk per piece
        assert chunks[-3]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
        assert chunks[-2]["usage"] == whole["usage"] and chunks[-2]["choices"] == []


# ------------------------------------------------------------------------ fake models


def test_the_first_chunk_arrives_while_the_model_is_still_generating():
    go_on = threading.Event()

    def script(text, should_stop, on_text):
        on_text("Hel")
        on_text("lo")
        # Blocks until the test has read "Hel": were the stream sent after the reply, the test
        # would wait for it here until both time out.
        assert go_on.wait(WAIT), "the client never saw the first chunk"
        on_text(", wor")
        on_text("ld")
        return Response(text="Hello, world", prompt_tokens=3, completion_tokens=4)

    with (
        ServerThread(create_app(Fake(script), ServeConfig(max_tokens=4))) as server,
        httpx.stream("POST", f"{server.url}/chat/completions", json=body(), timeout=WAIT) as r,
    ):
        it = events(r)
        assert next(it)["choices"][0]["delta"]["role"] == "assistant"
        assert next(it)["choices"][0]["delta"] == {"content": "Hel"}
        assert not go_on.is_set()
        go_on.set()
        rest = list(it)
    assert [c["choices"][0]["delta"].get("content") for c in rest[:-2]] == ["lo", ", wor", "ld"]
    assert rest[-2]["choices"][0]["finish_reason"] == "length"  # 4 tokens of max_tokens 4
    assert rest[-1] == "[DONE]"


def test_an_empty_reply_is_a_whole_stream():
    server = ServerThread(create_app(Fake(lambda *a: Response(text="", prompt_tokens=2)), ServeConfig()))
    with server:
        chunks = stream(server, stream_options={"include_usage": True})
    assert content(chunks) == [] and chunks[-1] == "[DONE]"
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["usage"] == {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2}


def test_errors_before_the_first_token_keep_their_status():
    go_on = threading.Event()
    ran: list[str] = []

    def script(text, should_stop, on_text):
        ran.append(text)
        if text == "bad":
            raise InputError("the segment is after the end of the video")
        if text == "broken":
            raise RuntimeError("a fault of the model")
        on_text("holding")
        assert go_on.wait(WAIT)
        return Response(text="holding", completion_tokens=1)

    with ServerThread(create_app(Fake(script), ServeConfig(queue_size=1))) as server:
        url = f"{server.url}/chat/completions"
        r = httpx.post(url, json=body("bad"), timeout=WAIT)
        assert r.status_code == 400 and "after the end" in r.json()["error"]["message"]
        r = httpx.post(url, json=body("broken"), timeout=WAIT)
        assert r.status_code == 500 and r.json()["error"]["message"] == "internal error: RuntimeError"
        assert "Traceback" not in r.text
        holder = open_stream(server, "hold")
        read_until(holder, b'"content": "holding"')
        waiter = open_stream(server, "wait")
        wait_until(lambda: health(server)["waiting"] == 1)
        r = httpx.post(url, json=body("refused"), timeout=WAIT)  # the queue is full
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        waiter.close()  # leaves the queue before its first token
        wait_until(lambda: health(server)["waiting"] == 0)
        go_on.set()
        assert read_until(holder, b"data: [DONE]")
        holder.close()
        wait_until(lambda: not health(server)["running"])
    assert ran == ["bad", "broken", "hold"]  # neither the refused nor the departed request ran


def test_a_client_that_leaves_mid_stream_stops_the_generation(caplog):
    caplog.set_level(logging.ERROR)
    told: dict[str, threading.Event] = {"stays": threading.Event(), "fails": threading.Event()}

    def script(text, should_stop, on_text):
        if text == "next":
            on_text("served")
            return Response(text="served", completion_tokens=1)
        on_text("first")
        deadline = time.monotonic() + WAIT
        while not should_stop():  # one forward pass after another, until told to stop
            if time.monotonic() > deadline:
                return Response(text="first", completion_tokens=1)
            on_text(".")
            time.sleep(0.002)  # the pass itself
        told[text].set()
        if text == "fails":
            raise RuntimeError("a fault while stopping")
        return Response(text="first", completion_tokens=1)

    with ServerThread(create_app(Fake(script), ServeConfig(max_tokens=1000))) as server:
        for text in ("stays", "fails"):
            sock = open_stream(server, text)
            read_until(sock, b'"content": "first"')
            sock.close()
            assert told[text].wait(WAIT), "the generation did not stop when its client left"
            # the model is free again: the next request is served
            assert "".join(content(stream(server, "next"))) == "served"
        wait_until(lambda: any("after its client left" in r.message for r in caplog.records))
        assert not health(server)["running"]
    gc.collect()  # a task whose exception nobody read would be reported now
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    faults = [r for r in caplog.records if r.exc_info]
    assert len(faults) == 1 and "a fault while stopping" in str(faults[0].exc_info[1])


def test_a_fault_after_the_first_token_ends_the_stream_with_an_error_event(caplog):
    caplog.set_level(logging.ERROR, logger="sparrow.serve.stream")

    def script(text, should_stop, on_text):
        if text == "next":
            on_text("fine")
            return Response(text="fine", completion_tokens=1)
        on_text("partial")
        raise RuntimeError("the model broke")

    with ServerThread(create_app(Fake(script), ServeConfig())) as server:
        chunks = stream(server)
        assert content(chunks) == ["partial"] and "[DONE]" not in chunks
        assert chunks[-1] == {
            "error": {
                "message": "internal error: RuntimeError",
                "type": "server_error",
                "param": None,
                "code": 500,
            }
        }
        assert [r.exc_info[1].args for r in caplog.records] == [("the model broke",)]
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=WAIT)
        with pytest.raises(openai.APIError, match="internal error"):
            list(client.chat.completions.create(model="fake", messages=body()["messages"], stream=True))
        parts = client.chat.completions.create(model="fake", messages=body("next")["messages"], stream=True)
        assert "".join(p.choices[0].delta.content or "" for p in parts if p.choices) == "fine"
        client.close()
