"""Turn-taking for the one model: one generation at a time (a model is not safe to share between
threads), at most ``queue_size`` requests waiting in arrival order, the rest refused at once with a
``Retry-After``. A request stops when its client leaves (waiting or generating), when its time runs out,
or when the server shuts down and its grace has passed; the model is asked between forward passes.

Everything but :meth:`Scheduler.drain` and :meth:`StopFlag.__call__` runs on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class Refused(Exception):
    """The server will not take the request now; ``retry_after`` is the advice to the client, in seconds."""

    def __init__(self, status: int, message: str, retry_after: int):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class StopFlag:
    """Asked by the model before each forward pass (from the worker thread): True once the client has
    left, the request's time limit has passed or the server's shutdown grace has run out; ``reason``
    says which."""

    def __init__(self, scheduler: Scheduler, timeout: float):
        self._scheduler = scheduler
        self._deadline = time.monotonic() + timeout
        self.client_left = False
        self.reason: str | None = None

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.client_left:
            self.reason = "client disconnected"
        elif now > self._deadline:
            self.reason = "time limit"
        elif now > self._scheduler.drain_at:
            self.reason = "shutdown"
        return self.reason is not None

    def on_gone(self, gone: asyncio.Future) -> None:
        if not gone.cancelled():
            self.client_left = True


class Outcome(Generic[T]):
    def __init__(self, result: T, stop: StopFlag):
        self.result = result
        self.stop = stop


class Scheduler:
    def __init__(self, queue_size: int, timeout: float):
        self.queue_size = queue_size
        self.timeout = timeout
        self.waiting = 0
        self.running = False
        self.draining = False
        self.drain_at = math.inf  # monotonic time after which a running generation is cut
        self._lock = asyncio.Lock()
        self._mean_seconds = 1.0  # of recent generations, for Retry-After

    def drain(self, grace: float) -> None:
        """Refuse new and waiting requests from now on and cut the running one after ``grace`` seconds.
        Only sets two fields, so a signal handler or another thread may call it."""
        self.draining = True
        self.drain_at = min(self.drain_at, time.monotonic() + grace)

    def retry_after(self) -> int:
        return max(1, min(3600, math.ceil(self._mean_seconds * (self.waiting + 1))))

    def admit(self) -> None:
        """Raise Refused unless the request may join the queue now."""
        if self.draining:
            raise Refused(503, "the server is shutting down", 1)
        busy = self._lock.locked() or self.waiting > 0
        if busy and self.waiting >= self.queue_size:
            raise Refused(
                429, f"the server is busy ({self.waiting} requests waiting); retry later", self.retry_after()
            )

    async def run(self, work: Callable[[StopFlag], T], gone: asyncio.Future) -> Outcome[T] | None:
        """``work(stop)`` in a worker thread once the model is free, or None when ``gone`` (the client's
        disconnect) completes first. Raises Refused when the queue is full or the server shuts down."""
        self.admit()
        self.waiting += 1
        acquiring = asyncio.ensure_future(self._lock.acquire())
        try:
            await asyncio.wait({acquiring, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._abandon(acquiring)
            raise
        finally:
            self.waiting -= 1
        if gone.done() or not acquiring.done():
            self._abandon(acquiring)
            return None
        try:
            if self.draining:
                raise Refused(503, "the server is shutting down", 1)
            stop = StopFlag(self, self.timeout)
            gone.add_done_callback(stop.on_gone)
            self.running = True
            t0 = time.monotonic()
            result = await run_in_threadpool(work, stop)
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * (time.monotonic() - t0)
            return Outcome(result, stop)
        finally:
            self.running = False
            self._lock.release()

    def _abandon(self, acquiring: asyncio.Future) -> None:
        # A cancelled acquire never ends up holding the lock; one that already finished does.
        if not acquiring.cancel() and not acquiring.cancelled() and acquiring.exception() is None:
            self._lock.release()
