"""Package exports that load on first use, so importing a package (and starting the CLI) stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` for ``package``: ``modules`` maps a module (absolute, or
    relative to ``package`` with a leading dot) to the space-separated names it exports, and a name's
    module is imported when the name is first read.

        __all__, __getattr__ = lazy_exports(__name__, {".run": "DryRun dry_run refine"})
    """
    home = {name: module for module, names in modules.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name in home:
            return getattr(importlib.import_module(home[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return list(home), __getattr__
