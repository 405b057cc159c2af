"""The one place that picks matplotlib's backend: files only (Agg), never a window, on any machine."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` drawing to files. Imported lazily: most commands never plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
