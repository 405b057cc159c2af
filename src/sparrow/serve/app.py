"""The ASGI app: ``/v1/models`` and ``/v1/chat/completions`` (non-streaming, and streaming as
server-sent events), in OpenAI's wire format, over any refinement backend (a Sparrow checkpoint in
``sparrow serve``).

One request is generated at a time (a model is not safe to share between threads), in a worker thread
so the event loop keeps answering. The model package's generation API returns whole replies, so a
streamed reply is sent as word-sized chunks once it is generated: clients see the OpenAI stream
format, not earlier first tokens.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from sparrow.refine.backends.base import Backend, BackendError, Response, Sampling
from sparrow.refine.backends.base import Request as BackendRequest
from sparrow.serve.config import ServeConfig
from sparrow.serve.messages import RequestError, parse_messages

_CHUNK = re.compile(r"\s*\S+|\s+")  # pieces that join back to the whole text


def _error(status: int, message: str) -> JSONResponse:
    kind = "permission_error" if status == 403 else "invalid_request_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _sampling(body: dict[str, Any], default_max: int) -> tuple[Sampling, int]:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) or default_max
    temperature = body.get("temperature", 0.0)
    top_p = body.get("top_p", 1.0)
    seed = body.get("seed") or 0
    for name, v in (
        ("max_tokens", max_tokens),
        ("temperature", temperature),
        ("top_p", top_p),
        ("seed", seed),
    ):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise RequestError(f"'{name}' must be a number")
    s = Sampling(float(temperature), float(top_p), int(max_tokens))
    try:
        s.validate()
    except BackendError as e:
        raise RequestError(str(e)) from e
    return s, int(seed)


def _chunks(cid: str, created: int, model: str, resp: Response, finish: str) -> Iterator[str]:
    def event(delta: dict[str, Any], reason: str | None = None) -> str:
        obj = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in _CHUNK.findall(resp.text):
        yield event({"content": piece})
    yield event({}, finish)
    yield "data: [DONE]\n\n"


def create_app(backend: Backend, cfg: ServeConfig | None = None) -> FastAPI:
    cfg = cfg or ServeConfig()
    app = FastAPI(title="sparrow serve", docs_url=None, redoc_url=None)
    lock = threading.Lock()

    def run(req: BackendRequest) -> Response:
        with lock:
            return backend.complete([req])[0]

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": backend.model, "object": "model", "created": 0, "owned_by": "sparrow"}],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object")
        try:
            messages = parse_messages(body.get("messages"), cfg.video_root)
            sampling, seed = _sampling(body, cfg.max_tokens)
        except RequestError as e:
            return _error(e.status, str(e))
        if backend.greedy_only and sampling.temperature > 0:
            return _error(400, f"{backend.model} decodes greedily: use temperature 0")
        resp = await run_in_threadpool(run, BackendRequest(messages, sampling, seed))
        if resp.error is not None:
            return _error(500, resp.error)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        finish = "length" if resp.completion_tokens >= sampling.max_tokens else "stop"
        if body.get("stream"):
            return StreamingResponse(
                _chunks(cid, created, backend.model, resp, finish), media_type="text/event-stream"
            )
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": backend.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": resp.text}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": resp.prompt_tokens,
                "completion_tokens": resp.completion_tokens,
                "total_tokens": resp.prompt_tokens + resp.completion_tokens,
            },
        }

    return app
