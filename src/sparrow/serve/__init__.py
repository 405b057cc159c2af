"""``sparrow serve``: an OpenAI-compatible chat-completions server for Sparrow checkpoints (FastAPI).

from sparrow.serve import ServeConfig, create_app
app = create_app(SparrowBackend(SparrowConfig("runs/x/final")), ServeConfig(video_root="videos"))
"""

from __future__ import annotations

from sparrow.lazy import lazy_exports

# Names load lazily: `sparrow --help` must not import FastAPI (about 0.35 s).
_LAZY = {
    "ServeConfig": "sparrow.serve.config",
    "create_app": "sparrow.serve.app",
    "RequestError": "sparrow.serve.messages",
    "parse_messages": "sparrow.serve.messages",
}

__all__ = list(_LAZY)


__getattr__ = lazy_exports("sparrow.serve", _LAZY)
