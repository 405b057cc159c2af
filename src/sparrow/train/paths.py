"""The one rule for relative paths in training configs: recipes resolve model paths against the recipe
file's directory, mixtures resolve source files against the data root, with the same function."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_path(path: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    """``path`` with ``~`` expanded; a relative path is taken under ``root`` (kept relative if root is None)."""
    p = Path(path).expanduser()
    if p.is_absolute() or root is None:
        return p
    return Path(root) / p
