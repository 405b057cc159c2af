"""Latency of ``sparrow serve`` under load with one abusive client, against the server it replaces.

The baseline is the server before issue 18, rebuilt here in a few lines: one lock around the model, any
``max_tokens`` accepted, generation running on after the client has hung up, every request queued.
Both serve the same tiny random checkpoint on loopback (the model never ends a reply on its own, so a
reply is as long as asked). ``--users`` clients each send short chat requests one after another for
``--seconds``; one abusive client meanwhile asks for ``--abusive-tokens`` tokens and hangs up after
``--hang-up`` seconds, again and again. A user's request that takes longer than ``--timeout`` counts
as unanswered, with that timeout as its latency. The table gives, per server, the users' requests
answered, their median and p95 latency, and the ratio of the baseline's p95 to Sparrow's.

Then streaming: one ``--stream-tokens`` reply asked with ``stream: true``, the time to its first content
chunk against the time to the whole reply unstreamed, which is when the previous server's stream
(word-sized chunks of the finished reply) sent its first chunk; and the streamed reply's total time
against the unstreamed one's, the cost of decoding each token as it comes. Medians of ``--repeats``.

    .venv/bin/python benchmarks/bench_serve.py [--users 4] [--seconds 15] [--abusive-tokens 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastapi import FastAPI, Request  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

from sparrow.chat.base import Decoding  # noqa: E402
from sparrow.chat.base import Request as BackendRequest  # noqa: E402
from sparrow.chat.sparrow import SparrowBackend, SparrowConfig  # noqa: E402
from sparrow.model import Processor, VideoLLM, VideoLLMConfig  # noqa: E402
from sparrow.serve import ServeConfig, create_app  # noqa: E402
from sparrow.serve.messages import parse_messages  # noqa: E402
from sparrow.serve.server import ServerThread  # noqa: E402


def naive_app(backend: SparrowBackend, over: threading.Event) -> FastAPI:
    """The previous server's behaviour. ``over`` is set only once the measurement has ended, so that
    the backlog it leaves behind does not run on for minutes."""
    app = FastAPI()
    lock = threading.Lock()

    def run(req: BackendRequest):
        with lock:
            return backend.answer(req, over.is_set)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        body = await request.json()
        messages = parse_messages(body["messages"], None)
        resp = await run_in_threadpool(run, BackendRequest(messages, Decoding(max_tokens=body["max_tokens"])))
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": resp.text}}]}

    return app


def load(url: str, args: argparse.Namespace) -> list[float | None]:
    """Each user request's latency (None: not answered within the timeout)."""
    latencies: list[float | None] = []
    end = time.monotonic() + args.seconds
    done = threading.Event()

    def user(k: int) -> None:
        with httpx.Client(timeout=args.timeout) as c:
            while time.monotonic() < end:
                body = {
                    "messages": [{"role": "user", "content": f"User {k}: say something."}],
                    "max_tokens": 16,
                }
                t0 = time.monotonic()
                try:
                    ok = c.post(url, json=body).status_code == 200
                except httpx.TimeoutException:
                    ok = False
                latencies.append(time.monotonic() - t0 if ok else None)

    def abuser() -> None:
        body = {"messages": [{"role": "user", "content": "Talk forever."}], "max_tokens": args.abusive_tokens}
        while not done.is_set():
            with contextlib.suppress(httpx.TimeoutException):
                httpx.post(url, json=body, timeout=args.hang_up)

    bad = threading.Thread(target=abuser)
    bad.start()
    users = [threading.Thread(target=user, args=(k,)) for k in range(args.users)]
    for t in users:
        t.start()
    for t in users:
        t.join()
    done.set()
    bad.join()
    return latencies


def summary(name: str, latencies: list[float | None], timeout: float) -> tuple[float, str]:
    """The p95 latency and how to print it: a p95 that falls on an unanswered request is a lower bound."""
    answered = [x for x in latencies if x is not None]
    censored = np.array([timeout if x is None else x for x in latencies])
    p50, p95 = np.percentile(censored, 50), np.percentile(censored, 95)
    bound = ">=" if p95 >= timeout else ""
    print(f"{name:<16} {len(answered):>4}/{len(latencies):<4} {p50:>9.2f} {bound + format(p95, '.2f'):>9}")
    return float(p95), bound


def streaming(url: str, tokens: int, repeats: int) -> None:
    """Time to the first streamed chunk and to the whole reply, streamed and not (medians)."""
    body = {"messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": tokens}
    first, streamed, whole = [], [], []
    with httpx.Client(timeout=300) as c:
        for _ in range(repeats):
            t0 = time.monotonic()
            assert c.post(url, json=body).status_code == 200
            whole.append(time.monotonic() - t0)
            t0, seen = time.monotonic(), None
            with c.stream("POST", url, json={**body, "stream": True}) as r:
                for line in r.iter_lines():
                    if seen is None and '"content":' in line and '"content": ""' not in line:
                        seen = time.monotonic() - t0
            first.append(seen if seen is not None else float("nan"))
            streamed.append(time.monotonic() - t0)
    f, s, w = (float(np.median(x)) for x in (first, streamed, whole))
    print(
        f"streaming a {tokens}-token reply: first chunk {f:.3f} s, whole reply {s:.2f} s streamed, {w:.2f} s not"
    )
    print(f"time to first chunk ratio (previous server's stream / sparrow serve): {w / f:.1f}x")
    print(f"streamed / unstreamed total time: {s / w:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--abusive-tokens", type=int, default=1000)
    ap.add_argument("--hang-up", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stream-tokens", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = VideoLLMConfig.from_yaml(ROOT / "configs" / "tiny" / "model.yaml")
        proc = Processor(cfg)
        torch.manual_seed(0)
        VideoLLM(cfg, tokenizer=proc.tokenizer).save_pretrained(Path(tmp) / "ckpt", processor=proc)
        backend = SparrowBackend(SparrowConfig(str(Path(tmp) / "ckpt")))
        t0 = time.perf_counter()
        backend.answer(
            BackendRequest(parse_messages([{"role": "user", "content": "x"}], None), Decoding(max_tokens=100))
        )
        per_token = (time.perf_counter() - t0) / 100
        print(
            f"{args.users} users x {args.seconds:g} s, abusive client: {args.abusive_tokens} tokens "
            f"(~{args.abusive_tokens * per_token:.1f} s each), hangs up after {args.hang_up:g} s; "
            f"tiny checkpoint, {args.threads} thread(s)"
        )
        print(f"{'server':<16} {'answered':>9} {'p50 s':>9} {'p95 s':>9}")
        serve_cfg = ServeConfig(max_tokens=16, max_new_tokens=max(16, args.abusive_tokens), queue_size=16)
        with ServerThread(create_app(backend, serve_cfg)) as server:
            ours, _ = summary("sparrow serve", load(f"{server.url}/chat/completions", args), args.timeout)
        over = threading.Event()
        server = ServerThread(naive_app(backend, over)).start()
        try:
            naive, bound = summary(
                "previous server", load(f"{server.url}/chat/completions", args), args.timeout
            )
        finally:
            over.set()
            server.stop()
        print(f"p95 ratio (previous / sparrow serve): {bound}{naive / ours:.1f}x")
        stream_cfg = ServeConfig(max_tokens=args.stream_tokens, max_new_tokens=args.stream_tokens)
        with ServerThread(create_app(backend, stream_cfg)) as server:
            streaming(f"{server.url}/chat/completions", args.stream_tokens, args.repeats)


if __name__ == "__main__":
    main()
