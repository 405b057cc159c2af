"""Where Sparrow keeps what it prepares once and reuses (converted checkpoints)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def sparrow_home(env: Mapping[str, str] | None = None) -> Path:
    """``$SPARROW_HOME`` if set, else ``$XDG_CACHE_HOME/sparrow``, else ``~/.cache/sparrow``."""
    env = os.environ if env is None else env
    if env.get("SPARROW_HOME"):
        return Path(env["SPARROW_HOME"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "sparrow"
    return Path.home() / ".cache" / "sparrow"
