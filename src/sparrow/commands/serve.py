"""``sparrow serve``: an OpenAI-compatible chat-completions server for a Sparrow checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from sparrow.commands._options import config_flags
from sparrow.serve.config import ServeConfig
from sparrow.ui import UsageError


@config_flags(ServeConfig, paths=("video_root",))
def serve(
    checkpoint: Path = typer.Argument(
        ..., help="A Sparrow checkpoint folder (save_pretrained).", show_default=False
    ),
    *,
    cfg: ServeConfig,  # --host, --port, --video-root, --max-tokens, --max-new-tokens, --queue-size, ...
) -> None:
    """Serve /health, /v1/models and /v1/chat/completions (streaming too) for CHECKPOINT: text, images as
    data URLs and videos by path inside --video-root. Any OpenAI client, or `sparrow refine --backend
    openai`, can call it. One reply is generated at a time; SIGTERM stops it within 5 s."""
    from sparrow.chat.base import BackendError
    from sparrow.chat.sparrow import SparrowBackend, SparrowConfig
    from sparrow.serve.app import create_app
    from sparrow.serve.server import serve_forever
    from sparrow.ui import err_console

    if cfg.video_root is not None and not Path(cfg.video_root).is_dir():
        raise UsageError(f"video root not found: {cfg.video_root}")
    try:
        backend = SparrowBackend(SparrowConfig(str(checkpoint), cfg.device))
    except BackendError as e:
        raise UsageError(str(e)) from e
    err_console.print(f"serving {backend.model} on http://{cfg.host}:{cfg.port}/v1", markup=False)
    serve_forever(create_app(backend, cfg), cfg.host, cfg.port, cfg.shutdown_grace)


def register(app: typer.Typer) -> None:
    app.command(name="serve")(serve)
