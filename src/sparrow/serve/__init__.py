"""``sparrow serve``: an OpenAI-compatible chat-completions server for Sparrow checkpoints (FastAPI).

from sparrow.serve import create_app
app = create_app(SparrowBackend(SparrowConfig("runs/x/final")), video_root="videos")
"""

from sparrow.serve.app import ServeConfig, create_app
from sparrow.serve.messages import RequestError, parse_messages

__all__ = ["RequestError", "ServeConfig", "create_app", "parse_messages"]
