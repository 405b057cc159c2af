"""Output frame sizes: native, shorter side, or exact (height, width), in display orientation."""

from __future__ import annotations

Size = int | tuple[int, int] | None


def check_size(size: object) -> Size:
    """Validate a ``size`` argument; returns it normalised (lists become tuples)."""
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        return size
    if (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in size)
    ):
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be None, an int (shorter side) or (height, width), got {size!r}")


def target_size(size: Size, height: int, width: int) -> tuple[int, int] | None:
    """(height, width) to produce from a ``height`` x ``width`` picture; None keeps it."""
    if size is None:
        return None
    if isinstance(size, int):
        if height <= width:
            return size, max(1, round(width * size / height))
        return max(1, round(height * size / width)), size
    return size
