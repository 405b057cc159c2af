"""``sparrow serve``: an OpenAI-compatible chat-completions server for a Sparrow checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sparrow.commands import default
from sparrow.serve.config import ServeConfig
from sparrow.ui import UsageError


def _d(name: str) -> Any:
    return default(ServeConfig, name)


def serve(
    checkpoint: Path = typer.Argument(
        ..., help="A Sparrow checkpoint folder (save_pretrained).", show_default=False
    ),
    host: str = typer.Option(_d("host"), "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(_d("port"), "--port", help="Port to listen on."),
    video_root: Path = typer.Option(
        None, "--video-root", help="Videos may be named by path only inside this folder (default: no videos)."
    ),
    max_tokens: int = typer.Option(
        _d("max_tokens"), "--max-tokens", help="Reply length when a request names none."
    ),
    device: str = typer.Option(_d("device"), "--device", help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Serve /v1/models and /v1/chat/completions (streaming too) for CHECKPOINT: text, images as data URLs
    and videos by path inside --video-root. Any OpenAI client, or `sparrow refine --backend openai`, can
    call it."""
    from sparrow.refine.backends.base import BackendError
    from sparrow.refine.backends.sparrow import SparrowBackend, SparrowConfig
    from sparrow.serve.app import create_app
    from sparrow.serve.server import serve_forever
    from sparrow.ui import err_console

    if video_root is not None and not video_root.is_dir():
        raise UsageError(f"video root not found: {video_root}")
    cfg = ServeConfig(host, port, str(video_root) if video_root else None, max_tokens, device)
    try:
        backend = SparrowBackend(SparrowConfig(str(checkpoint), device))
    except BackendError as e:
        raise UsageError(str(e)) from e
    err_console.print(f"serving {backend.model} on http://{host}:{port}/v1", markup=False)
    serve_forever(create_app(backend, cfg), host, port)


def register(app: typer.Typer) -> None:
    app.command(name="serve")(serve)
