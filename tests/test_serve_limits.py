"""``sparrow serve`` cannot be hung: the token cap, the per-request time limit, generation stopping when
the client leaves (streaming and not), the bounded queue (429 with Retry-After), /health and /v1/models
answering during a generation, graceful shutdown (in process and on SIGTERM) and a loopback load test
with an abusive client. The tiny random model never ends a reply on its own, so a request for many
tokens keeps it busy until something stops it (about 2-5 ms a token here)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import openai
import pytest
from conftest import REPO, served_checkpoint

from sparrow.chat.sparrow import SparrowBackend, SparrowConfig
from sparrow.serve import ServeConfig, create_app
from sparrow.serve.server import ServerThread

LONG = 100_000  # tokens: minutes of generation for the tiny model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve_limits")
    served_checkpoint(d)
    return d, SparrowBackend(SparrowConfig(str(d / "ckpt")))


def serve(setup, **kw) -> ServerThread:
    d, backend = setup
    cfg = ServeConfig(video_root=str(d / "videos"), max_tokens=8, max_new_tokens=LONG, **kw)
    return ServerThread(create_app(backend, cfg))


def client(server: ServerThread, timeout: float = 30.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=timeout)


def chat(text: str = "Say something.", **kw) -> dict:
    return {"model": "ckpt", "messages": [{"role": "user", "content": text}], **kw}


def health(server: ServerThread) -> dict:
    return httpx.get(f"http://{server.host}:{server.port}/health", timeout=5).json()


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> float:
    """Seconds until ``check()`` held; fails the test past ``timeout``."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - t0


def hold_open(server: ServerThread, body: dict) -> socket.socket:
    """Send a chat request on a raw socket and leave it waiting for the reply (close it to leave)."""
    data = json.dumps(body).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(head.encode() + data)
    return sock


def read_reply(sock: socket.socket, timeout: float = 20.0) -> tuple[int, dict]:
    sock.settimeout(timeout)
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw.split(b"\r\n\r\n", 1)[1]) < _length(raw):
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    head, body = raw.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)


def _length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


# ------------------------------------------------------------------------ caps and limits


def test_max_tokens_above_the_cap_is_refused_at_once(setup):
    d, backend = setup
    cfg = ServeConfig(video_root=str(d / "videos"), max_tokens=8, max_new_tokens=64)
    with ServerThread(create_app(backend, cfg)) as server:
        c = client(server, timeout=10)
        t0 = time.monotonic()
        with pytest.raises(openai.BadRequestError) as e:
            c.chat.completions.create(**chat(), max_tokens=1_000_000_000)
        assert time.monotonic() - t0 < 5 and "limit of 64" in e.value.message
        with pytest.raises(openai.BadRequestError, match="max_completion_tokens"):
            c.chat.completions.create(**chat(), max_completion_tokens=65)
        r = c.chat.completions.create(**chat(), max_tokens=64)
        assert r.usage.completion_tokens == 64 and r.choices[0].finish_reason == "length"


def test_settings_that_cannot_work_are_refused():
    for bad in (
        dict(max_tokens=2000),  # over the default --max-new-tokens
        dict(max_tokens=0),
        dict(queue_size=-1),
        dict(request_timeout=0),
        dict(request_timeout=float("nan")),
        dict(shutdown_grace=10),  # could not exit within 5 s
    ):
        with pytest.raises(ValueError):
            ServeConfig(**bad)
    assert ServeConfig(max_tokens=2000, max_new_tokens=4096).max_tokens == 2000


def test_the_time_limit_cuts_a_long_reply(setup):
    with serve(setup, request_timeout=1.0) as server:
        t0 = time.monotonic()
        r = client(server).chat.completions.create(**chat(), max_tokens=LONG)
        took = time.monotonic() - t0
    assert took < 10, took
    assert 0 < r.usage.completion_tokens < LONG and r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content  # the reply so far is kept


def test_generation_stops_when_the_client_disconnects(setup):
    with serve(setup) as server:
        # non-streaming, through the openai client's own timeout
        with pytest.raises(openai.APITimeoutError):
            client(server, timeout=1.5).chat.completions.create(**chat(), max_tokens=LONG)
        assert wait_until(lambda: not health(server)["running"], 10) < 10
        # streaming, by closing the socket while the model runs
        sock = hold_open(server, chat(max_tokens=LONG, stream=True))
        wait_until(lambda: health(server)["running"])
        sock.close()
        wait_until(lambda: not health(server)["running"], 10)
        # the model is free again: a short request is answered at once
        t0 = time.monotonic()
        r = client(server).chat.completions.create(**chat(), max_tokens=4)
        assert r.usage.completion_tokens == 4 and time.monotonic() - t0 < 10


def test_bounded_queue_429_with_retry_after_and_health_stays_responsive(setup):
    with serve(setup, queue_size=1) as server:
        running = hold_open(server, chat(max_tokens=LONG))
        wait_until(lambda: health(server)["running"])
        waiting = hold_open(server, chat(max_tokens=4))
        wait_until(lambda: health(server)["waiting"] == 1)
        for path in ("/health", "/v1/models"):
            t0 = time.monotonic()
            assert httpx.get(f"http://{server.host}:{server.port}{path}", timeout=5).status_code == 200
            assert time.monotonic() - t0 < 3.0, path  # not behind the generation (minutes)
        with pytest.raises(openai.RateLimitError) as e:
            client(server).chat.completions.create(**chat(), max_tokens=4)
        assert int(e.value.response.headers["Retry-After"]) >= 1
        assert e.value.body["message"].startswith("the server is busy")
        running.close()  # the waiting request gets the model next
        status, body = read_reply(waiting)
        assert status == 200 and body["usage"]["completion_tokens"] == 4
        waiting.close()
        # a client that leaves while waiting leaves the queue
        running = hold_open(server, chat(max_tokens=LONG))
        wait_until(lambda: health(server)["running"])
        leaver = hold_open(server, chat(max_tokens=4))
        wait_until(lambda: health(server)["waiting"] == 1)
        leaver.close()
        wait_until(lambda: health(server)["waiting"] == 0, 5)
        running.close()
        wait_until(lambda: not health(server)["running"], 10)


def test_stop_finishes_or_cuts_in_flight_requests_within_5_s(setup):
    server = serve(setup, queue_size=4, shutdown_grace=1.0).start()
    running = hold_open(server, chat(max_tokens=LONG))
    wait_until(lambda: health(server)["running"])
    queued = hold_open(server, chat(max_tokens=4))
    wait_until(lambda: health(server)["waiting"] == 1)
    t0 = time.monotonic()
    assert server.stop(timeout=10)
    assert time.monotonic() - t0 < 5
    status, body = read_reply(running, 1)
    assert status == 200 and body["choices"][0]["finish_reason"] == "length"  # cut after the grace
    assert 0 < body["usage"]["completion_tokens"] < LONG
    status, body = read_reply(queued, 1)
    assert status == 503 and "shutting down" in body["error"]["message"]
    running.close()
    queued.close()


def test_sigterm_stops_sparrow_serve_within_5_s(setup, tmp_path):
    d, _ = setup
    with socket.socket() as s:  # a free port (the server binds it again a moment later)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "sparrow", "serve", str(d / "ckpt"), "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--max-new-tokens", str(LONG)], env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/health"), 90)
        results: list = []
        long_call = threading.Thread(
            target=lambda: results.append(
                httpx.post(f"{base}/v1/chat/completions", json=chat(max_tokens=LONG), timeout=30)
            )
        )
        long_call.start()
        wait_until(lambda: httpx.get(f"{base}/health", timeout=5).json()["running"])
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - t0
        long_call.join(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 5, f"exited {took:.1f} s after SIGTERM"
    assert results and results[0].status_code == 200  # the in-flight request got its reply so far
    assert results[0].json()["choices"][0]["finish_reason"] == "length"
    assert b"Traceback" not in proc.stderr.read()
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"{base}/health", timeout=2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# ------------------------------------------------------------------------ load


def test_load_every_well_formed_request_is_answered_despite_an_abusive_client(setup):
    """Four users call through the openai client (text, video, streaming) while one client floods the
    server with over-cap, malformed, unsupported and abandoned requests."""
    d, _ = setup
    well: list[tuple[str, float]] = []
    abuse: list[int] = []
    errors: list[BaseException] = []
    with serve(setup, queue_size=8) as server:
        stop, started = threading.Event(), threading.Event()

        def user(k: int) -> None:
            c = client(server, timeout=60)
            video = {"type": "video_url", "video_url": {"url": "a.mp4", "start": 0.0, "end": 1.5}}
            try:
                for i in range(3):
                    t0 = time.monotonic()
                    if (k + i) % 3 == 0:
                        content = [{"type": "text", "text": "What happens?"}, video]
                        r = c.chat.completions.create(
                            model="ckpt", messages=[{"role": "user", "content": content}], max_tokens=6
                        )
                        text = r.choices[0].message.content
                    elif (k + i) % 3 == 1:
                        parts = c.chat.completions.create(**chat(f"user {k}"), max_tokens=6, stream=True)
                        text = "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
                    else:
                        text = (
                            c.chat.completions.create(**chat(f"user {k}"), max_tokens=6)
                            .choices[0]
                            .message.content
                        )
                    well.append((text, time.monotonic() - t0))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def abuser() -> None:
            url = f"{server.url}/chat/completions"
            bodies = [
                chat(max_tokens=1_000_000_000),
                chat(n=3),
                chat(tools=[{"type": "function", "function": {"name": "f"}}]),
                {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]},
                chat(max_tokens=0),
            ]
            while not stop.is_set():
                try:  # asks for minutes of generation, then hangs up
                    httpx.post(url, json=chat(max_tokens=LONG), timeout=0.3)
                except httpx.TimeoutException:
                    abuse.append(-1)
                started.set()
                for body in bodies:
                    abuse.append(httpx.post(url, json=body, timeout=10).status_code)
                abuse.append(httpx.post(url, content=b"{not json", timeout=10).status_code)

        threads = [threading.Thread(target=user, args=(k,)) for k in range(4)]
        bad = threading.Thread(target=abuser)
        bad.start()
        started.wait(30)  # users arrive while abandoned generations come and go
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        stop.set()
        bad.join(30)
        assert not errors, errors
        assert health(server)["status"] == "ok"
    assert len(well) == 12 and all(text for text, _ in well)
    # each waits at most for a few short replies: an abandoned generation (minutes) would show here
    assert max(seconds for _, seconds in well) < 15, sorted(seconds for _, seconds in well)
    assert abuse and set(abuse) <= {400, 404, -1}, sorted(set(abuse))
    assert abuse.count(-1) >= 1  # the abandoned generations were stopped, not queued behind
