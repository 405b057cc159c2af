"""``sparrow serve``: an OpenAI-compatible chat-completions server for Sparrow checkpoints (FastAPI).

from sparrow.serve import ServeConfig, create_app
app = create_app(SparrowBackend(SparrowConfig("runs/x/final")), ServeConfig(video_root="videos"))
"""

from __future__ import annotations

from sparrow.lazy import lazy_exports

# Names load lazily: `sparrow --help` must not import FastAPI (about 0.35 s).
__all__, __getattr__ = lazy_exports(
    __name__,
    {".config": "ServeConfig", ".app": "create_app", ".messages": "RequestError parse_messages"},
)
