"""``sparrow serve``: an OpenAI-compatible chat-completions server for Sparrow checkpoints (FastAPI).

from sparrow.serve import ServeConfig, create_app
app = create_app(SparrowBackend(SparrowConfig("runs/x/final")), ServeConfig(video_root="videos"))
"""

from __future__ import annotations

from typing import Any

# Names load lazily: `sparrow --help` must not import FastAPI (about 0.35 s).
_LAZY = {
    "ServeConfig": "sparrow.serve.config",
    "create_app": "sparrow.serve.app",
    "RequestError": "sparrow.serve.messages",
    "parse_messages": "sparrow.serve.messages",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sparrow.serve' has no attribute {name!r}")
