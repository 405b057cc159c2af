"""The ASGI app: ``/health``, ``/v1/models`` and ``/v1/chat/completions`` (non-streaming, and streaming
as server-sent events), in OpenAI's wire format, over a Sparrow checkpoint (``SparrowBackend``).

The model generates one reply at a time in a worker thread, so the event loop keeps answering
``/health`` and ``/v1/models``; :mod:`sparrow.serve.scheduler` queues the rest (bounded) and stops a
generation whose client left, whose time ran out or whose server is shutting down. Client mistakes are
4xx with an OpenAI-style JSON error; 500 is kept for faults of the model or machine.

A streamed reply goes out token by token as the model generates it (:mod:`sparrow.serve.stream`): each
piece of text the model hands to ``on_text`` is its own chunk, so clients see the first tokens before
the reply ends. Errors before the first token keep their status codes, as for a reply that is not
streamed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.responses import Response as HTTPResponse

from sparrow.chat.base import Request as BackendRequest
from sparrow.chat.base import Response
from sparrow.chat.sparrow import InputError
from sparrow.serve.config import ServeConfig
from sparrow.serve.messages import RequestError
from sparrow.serve.params import ChatParams, parse_body
from sparrow.serve.scheduler import Outcome, Refused, Scheduler
from sparrow.serve.stream import ReplyStream, error_body, finish_reason, usage

CLIENT_GONE = 499  # logged for a request whose client left; nobody reads the reply


class ChatModel(Protocol):
    """What the server needs of a model (``SparrowBackend`` has it). ``answer`` runs in a worker thread:
    it asks ``should_stop`` between forward passes and hands each new piece of the reply's text to
    ``on_text`` as it is generated, the pieces joining to the returned text. A model that cannot
    stream may hand over the whole text once; the client then sees it in one chunk."""

    model: str
    greedy_only: bool

    def answer(
        self,
        req: BackendRequest,
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Response: ...


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


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


async def _disconnected(request: Request, gone: asyncio.Future) -> None:
    """Completes ``gone`` when the client closes the connection (the body has been read, so only that
    can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    if not gone.done():
        gone.set_result(None)


def _reply(p: ChatParams, outcome: Outcome[Response]) -> dict[str, Any]:
    message = {"role": "assistant", "content": outcome.result.text}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": p.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(outcome, p)}],
        "usage": usage(outcome.result),
    }


async def _stream(
    scheduler: Scheduler, backend: ChatModel, req: BackendRequest, gone: asyncio.Future
) -> ReplyStream | None:
    """Starts the generation and waits for its first piece of text or its end: the stream to send, or
    None when the client left first. Raises what ``Scheduler.run`` raises before the first text."""
    reply = ReplyStream(scheduler, lambda stop, on_text: backend.answer(req, stop, on_text), gone)
    try:
        await reply.begin()
    except BaseException:
        reply.leave()  # this request was cancelled (the server is stopping): stop its generation too
        raise
    if not reply.started:
        outcome = reply.task.result()
        if outcome is None or outcome.stop.client_left:
            return None
    return reply  # an empty reply is still a whole stream


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
        gone = asyncio.get_running_loop().create_future()
        watcher = asyncio.ensure_future(_disconnected(request, gone))
        try:
            if p.stream:
                outcome = await _stream(scheduler, backend, req, gone)
            else:
                outcome = await scheduler.run(lambda stop: backend.answer(req, stop), gone)
        except Refused as e:
            return _error(e.status, str(e), {"Retry-After": str(e.retry_after)})
        except InputError as e:
            return _error(400, str(e))
        finally:
            watcher.cancel()
        if isinstance(outcome, ReplyStream):
            try:
                # Starlette's StreamingResponse reads request.receive() itself to see a disconnect:
                # the watcher must have stopped reading first (one reader at a time).
                await asyncio.wait({watcher})
            except BaseException:
                outcome.leave()
                raise
            if gone.done():
                outcome.leave()
                return HTTPResponse(status_code=CLIENT_GONE)
            return outcome.response(p)
        if outcome is None or outcome.stop.client_left:
            return HTTPResponse(status_code=CLIENT_GONE)
        return _reply(p, outcome)

    return app
