"""A reply streamed token by token as server-sent events, in OpenAI's ``chat.completion.chunk`` format.

The model generates in a worker thread and hands each new piece of text to ``on_text``; the hop to the
event loop goes through ``loop.call_soon_threadsafe`` into an asyncio queue that the response's body
drains. The server answers only once the first piece has arrived (or the generation has ended), so a
request refused or found faulty before its first token still gets its HTTP status and JSON error. After
that a fault of the model ends the stream with an error event (the openai client raises it) instead of
``data: [DONE]``, and the traceback goes to the server's log. A client that leaves mid-stream stops the
generation at its next forward pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from sparrow.chat.base import Response
from sparrow.chat.sparrow import InputError
from sparrow.serve.params import ChatParams
from sparrow.serve.scheduler import Outcome, Refused, Scheduler, StopFlag

log = logging.getLogger(__name__)
_END = object()  # queued after the last piece of text, once the generation has ended
_KINDS = {403: "permission_error", 429: "rate_limit_error", 500: "server_error", 503: "server_error"}


def error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error object."""
    kind = _KINDS.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def usage(resp: Response) -> dict[str, int]:
    return {
        "prompt_tokens": resp.prompt_tokens,
        "completion_tokens": resp.completion_tokens,
        "total_tokens": resp.prompt_tokens + resp.completion_tokens,
    }


def finish_reason(outcome: Outcome[Response], p: ChatParams) -> str:
    # A reply cut by the time limit or a shutdown ends like one cut by max_tokens.
    cut = outcome.stop.reason is not None or outcome.result.completion_tokens >= p.decoding.max_tokens
    return "length" if cut else "stop"


class ReplyStream:
    """One streamed generation: ``work(stop, on_text)`` runs through the scheduler as soon as this is
    built. Await :meth:`begin`, then either send :meth:`response` (``started``: text has come) or read
    ``task.result()`` (the generation ended first, raising what ``Scheduler.run`` raises). ``gone`` is
    the client's disconnect, as for ``Scheduler.run``; :meth:`leave` completes it."""

    def __init__(
        self,
        scheduler: Scheduler,
        work: Callable[[StopFlag, Callable[[str], None]], Response],
        gone: asyncio.Future,
    ):
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._first = self._loop.create_future()
        self._gone = gone
        self._over = False  # the body has read the end of the generation: nothing left to stop
        self._left = False
        self.task = asyncio.ensure_future(scheduler.run(lambda stop: work(stop, self._on_text), gone))
        self.task.add_done_callback(self._ended)

    @property
    def started(self) -> bool:
        return self._first.done()

    async def begin(self) -> None:
        """Returns once the first piece of text has arrived or the generation has ended."""
        await asyncio.wait({self._first, self.task}, return_when=asyncio.FIRST_COMPLETED)

    def leave(self) -> None:
        """The client left (or the request was cancelled) before the whole reply went out: the model
        stops at its next forward pass, and a fault it meets meanwhile is logged, as nobody else will."""
        if self._over or self._left:
            return
        self._left = True
        if not self._gone.done():
            self._gone.set_result(None)
        self.task.add_done_callback(_log_fault)

    def response(self, p: ChatParams) -> StreamingResponse:
        return _EventStream(self._events(p), self.leave)

    def _on_text(self, delta: str) -> None:  # in the worker thread
        # RuntimeError: the event loop is closed, the server is gone and nobody is left to send it to.
        with contextlib.suppress(RuntimeError):
            if delta:
                self._loop.call_soon_threadsafe(self._put, delta)

    def _put(self, delta: str) -> None:
        self._queue.put_nowait(delta)
        if not self._first.done():
            self._first.set_result(None)

    def _ended(self, task: asyncio.Future) -> None:
        # The thread queued its last piece before it returned, so the end comes after every piece.
        self._queue.put_nowait(_END)
        if not task.cancelled():
            task.exception()  # marks it retrieved; whoever handles it reads it again

    async def _events(self, p: ChatParams) -> AsyncIterator[str]:
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def event(delta: dict[str, Any] | None, reason: str | None = None, **extra: Any) -> str:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": reason}]
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": p.model}
            return f"data: {json.dumps({**obj, 'choices': choices, **extra}, ensure_ascii=False)}\n\n"

        try:
            yield event({"role": "assistant", "content": ""})
            while (delta := await self._queue.get()) is not _END:
                yield event({"content": delta})
            self._over = True
            if self.task.cancelled():  # only when the event loop itself is being torn down
                return
            fault = self.task.exception()
            if fault is not None:
                log.error("the model failed while streaming a reply", exc_info=fault)
                yield f"data: {json.dumps(error_body(500, f'internal error: {type(fault).__name__}'))}\n\n"
                return
            outcome = self.task.result()
            if outcome is None or outcome.stop.client_left:
                return
            yield event({}, finish_reason(outcome, p))
            if p.include_usage:
                yield event(None, usage=usage(outcome.result))
            yield "data: [DONE]\n\n"
        finally:
            self.leave()  # cancelled by starlette on a disconnect, or closed early


def _log_fault(task: asyncio.Future) -> None:
    if task.cancelled():
        return
    fault = task.exception()
    if fault is not None and not isinstance(fault, (Refused, InputError)):
        log.error("the model failed after its client left", exc_info=fault)


class _EventStream(StreamingResponse):
    """Calls ``on_close`` however the stream ends: all sent, cancelled when the client disconnects
    (starlette listens for that itself), or never started (the body's own ``finally`` would not run)."""

    def __init__(self, body: AsyncIterator[str], on_close: Callable[[], None]):
        super().__init__(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
