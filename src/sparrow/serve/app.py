"""The ASGI app: ``/health``, ``/v1/models`` and ``/v1/chat/completions`` (non-streaming, and streaming
as server-sent events), in OpenAI's wire format, over a Sparrow checkpoint (``SparrowBackend``).

The model generates one reply at a time in a worker thread, so the event loop keeps answering
``/health`` and ``/v1/models``; :mod:`sparrow.serve.scheduler` queues the rest (bounded) and stops a
generation whose client left, whose time ran out or whose server is shutting down. Client mistakes are
4xx with an OpenAI-style JSON error; 500 is kept for faults of the model or machine.

The model package's generation API returns whole replies, so a streamed reply is sent as word-sized
chunks once it is generated: clients see the OpenAI stream format, not earlier first tokens.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.responses import Response as HTTPResponse

from sparrow.chat.base import Request as BackendRequest
from sparrow.chat.base import Response
from sparrow.chat.sparrow import InputError
from sparrow.serve.config import ServeConfig
from sparrow.serve.messages import RequestError
from sparrow.serve.params import ChatParams, parse_body
from sparrow.serve.scheduler import Refused, Scheduler

_CHUNK = re.compile(r"\s*\S+|\s+")  # pieces that join back to the whole text
_KINDS = {403: "permission_error", 429: "rate_limit_error", 500: "server_error", 503: "server_error"}
CLIENT_GONE = 499  # logged for a request whose client left; nobody reads the reply


class ChatModel(Protocol):
    """What the server needs of a model (``SparrowBackend`` has it)."""

    model: str
    greedy_only: bool

    def answer(self, req: BackendRequest, should_stop: Callable[[], bool] | None = None) -> Response: ...


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = _KINDS.get(status, "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_json(request: Request, limit: int) -> Any:
    """The body as JSON, read no further than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(f"the request body is over this server's limit of {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the request body is over this server's limit of {limit} bytes", 413)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as e:  # RecursionError: nesting deeper than the parser goes
        raise RequestError("the request body is not JSON") from e


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read, so only that can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _chunks(
    cid: str, created: int, p: ChatParams, resp: Response, finish: str, usage: dict[str, int]
) -> Iterator[str]:
    def event(delta: dict[str, Any] | None, reason: str | None = None, **extra: Any) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": reason}]
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": p.model}
        return f"data: {json.dumps({**obj, 'choices': choices, **extra}, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in _CHUNK.findall(resp.text):
        yield event({"content": piece})
    yield event({}, finish)
    if p.include_usage:
        yield event(None, usage=usage)
    yield "data: [DONE]\n\n"


def _reply(p: ChatParams, resp: Response, finish: str) -> HTTPResponse | dict[str, Any]:
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    usage = {
        "prompt_tokens": resp.prompt_tokens,
        "completion_tokens": resp.completion_tokens,
        "total_tokens": resp.prompt_tokens + resp.completion_tokens,
    }
    if p.stream:
        return StreamingResponse(
            _chunks(cid, created, p, resp, finish, usage), media_type="text/event-stream"
        )
    message = {"role": "assistant", "content": resp.text}
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": p.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def create_app(backend: ChatModel, cfg: ServeConfig | None = None) -> FastAPI:
    """The server's app. ``app.state.drain()`` starts a graceful shutdown (``sparrow serve`` calls it
    on SIGTERM): new and waiting requests get 503, the running one ``cfg.shutdown_grace`` seconds."""
    cfg = cfg or ServeConfig()
    app = FastAPI(title="sparrow serve", docs_url=None, redoc_url=None, openapi_url=None)
    scheduler = Scheduler(cfg.queue_size, cfg.request_timeout)
    app.state.scheduler = scheduler
    app.state.drain = lambda: scheduler.drain(cfg.shutdown_grace)
    body_limit = int(cfg.max_request_mb * 1_000_000)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback on the server; the client gets one JSON line.
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.get("/health")
    async def health() -> JSONResponse:
        state = {
            "status": "draining" if scheduler.draining else "ok",
            "model": backend.model,
            "running": scheduler.running,
            "waiting": scheduler.waiting,
        }
        return JSONResponse(state, status_code=503 if scheduler.draining else 200)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": backend.model, "object": "model", "created": 0, "owned_by": "sparrow"}],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            p = parse_body(await _read_json(request, body_limit), cfg, backend.model, backend.greedy_only)
        except RequestError as e:
            return _error(e.status, str(e))
        except ClientDisconnect:
            return HTTPResponse(status_code=CLIENT_GONE)
        req = BackendRequest(p.messages, p.decoding, p.seed)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            outcome = await scheduler.run(lambda stop: backend.answer(req, stop), gone)
        except Refused as e:
            return _error(e.status, str(e), {"Retry-After": str(e.retry_after)})
        except InputError as e:
            return _error(400, str(e))
        finally:
            gone.cancel()
        if outcome is None or outcome.stop.client_left:
            return HTTPResponse(status_code=CLIENT_GONE)
        resp = outcome.result
        # A reply cut by the time limit or a shutdown ends like one cut by max_tokens.
        cut = outcome.stop.reason is not None or resp.completion_tokens >= p.decoding.max_tokens
        return _reply(p, resp, "length" if cut else "stop")

    return app
