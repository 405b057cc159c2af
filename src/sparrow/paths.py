"""The one rule for relative paths in configs: ``~`` is the user's home folder, an absolute path stays as
written, and a relative path is taken under the folder that named it (a recipe's or model YAML's folder,
a checkpoint, the data root). Model configs, recipes, HF-native model specs, mixtures and experiment
grids all resolve their paths with this function."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_path(path: str | os.PathLike, root: str | os.PathLike | None, absolute: bool = False) -> Path:
    """``path`` with ``~`` expanded; a relative path is taken under ``root`` (kept relative if root is
    None). ``absolute``: a path taken under ``root`` is made absolute (``Path.resolve``)."""
    p = Path(path).expanduser()
    if p.is_absolute() or root is None:
        return p
    p = Path(root) / p
    return p.resolve() if absolute else p
