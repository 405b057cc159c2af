"""Timestamp text the model's prompts use around visual tokens.

Apollo (arXiv 2412.10360) found that a text timestamp before each clip's tokens works best:
``clip from 00:04-00:08: <clip tokens>``. Times are seconds from the first frame.
"""

from __future__ import annotations

import math


def format_time(t_s: float) -> str:
    """``MM:SS`` (``H:MM:SS`` from one hour on), whole seconds rounded down, like a player's clock."""
    total = max(0, math.floor(t_s + 1e-6))  # 7.9999999 from float arithmetic still reads 00:08
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def clip_prefix(start_s: float, end_s: float) -> str:
    """Apollo's clip separator: ``clip from 00:04-00:08:``."""
    return f"clip from {format_time(start_s)}-{format_time(end_s)}:"


def frame_prefix(t_s: float) -> str:
    """Per-frame separator: ``Frame from 00:04:``."""
    return f"Frame from {format_time(t_s)}:"


def video_header(duration_s: float) -> str:
    """A sentence stating the video length, e.g. ``The video lasts 01:23.`` (rounded to the second)."""
    return f"The video lasts {format_time(round(duration_s))}."
