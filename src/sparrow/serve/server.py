"""Running the app with uvicorn: in the foreground (``sparrow serve``) or in a background thread on an
already bound socket (tests, and callers that need a local server for a while).

Shutdown is graceful and bounded: SIGTERM / SIGINT (or ``ServerThread.stop``) first call the app's
``state.drain`` (``create_app`` sets it: new and waiting requests get 503, the running generation is cut
after its grace), then uvicorn stops accepting, lets in-flight responses finish and cancels whatever is
left ``grace + 1`` seconds later.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from types import FrameType
from typing import Any

import uvicorn


def _drain(app: Any) -> None:
    drain = getattr(getattr(app, "state", None), "drain", None)
    if drain is not None:
        drain()


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app to drain before its own shutdown begins."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        _drain(self.config.app)
        super().handle_exit(sig, frame)


def _config(app: Any, grace: float, log_level: str, **kw: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, log_level=log_level, timeout_graceful_shutdown=math.ceil(grace) + 1, lifespan="off", **kw
    )


class ServerThread:
    """uvicorn serving ``app`` on ``host``:``port`` (0: a free port) in a daemon thread.

    Use as a context manager; ``url`` is the OpenAI base URL (``http://host:port/v1``)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, grace: float = 2.0):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}/v1"
        self._server = _DrainingServer(_config(app, grace, "warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.host}:{self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut down as on SIGTERM; True when the server thread ended within ``timeout`` seconds."""
        _drain(self._server.config.app)
        self._server.should_exit = True
        self._thread.join(timeout=timeout)
        self._sock.close()
        return not self._thread.is_alive()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_forever(app: Any, host: str, port: int, grace: float = 2.0) -> None:
    """Serve until SIGTERM or SIGINT, then shut down within about ``grace + 1`` seconds."""
    _DrainingServer(_config(app, grace, "info", host=host, port=port)).run()
