"""Timed captions: HowTo100M's ``caption.json``, ``{video_id: {"start": [s, ...], "end": [s, ...], "text":
[str, ...]}}`` (seconds), the layout of the world's ``transcripts/caption.json`` and ``ground_truth.json``
and of what ``sparrow refine`` writes; and when two caption lines say the same thing (``caption_key``).
Read by refine, the caption metrics, the flywheel and the chat backends' loop stop, so it imports none.

Reading never stops at a bad entry: a video whose entry is malformed becomes one error row (``id``,
``line`` (None: the file is one JSON object), ``source``, ``reason``) and the others are read.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.io import atomic_write_text

FIELDS = ("start", "end", "text")
# A line's bullet or number and its time, which two copies of one caption in a loop need not share.
_LEAD = re.compile(
    r"^\s*(?:[-*•]\s*|\d+[.)]\s+)?\**\s*(?:\d+(?:\.\d+)?\s*(?:s|sec|seconds?)\s*\**\s*[:\-–]\s*)?",
    re.IGNORECASE,
)


class CaptionsError(ValueError):
    """A caption file cannot be read at all (missing, not JSON, not an object of videos)."""


@dataclass(frozen=True)
class Line:
    """One timed caption or transcript line (seconds)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """The timed lines of one video, in the file's order."""

    video_id: str
    lines: tuple[Line, ...]

    def to_dict(self) -> dict[str, list]:
        return {
            "start": [x.start for x in self.lines],
            "end": [x.end for x in self.lines],
            "text": [x.text for x in self.lines],
        }

    def paragraph(self) -> str:
        """All lines in time order as one text (how paragraph-level metrics see a video)."""
        return " ".join(x.text for x in sorted(self.lines, key=lambda x: (x.start, x.end)))


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def parse_entry(video_id: str, entry: Any) -> Transcript:
    """One video's entry; raises CaptionsError with a one-line reason when it is malformed."""
    if not isinstance(entry, dict):
        raise CaptionsError(f"entry must be an object with {list(FIELDS)}, got {type(entry).__name__}")
    cols = []
    for key in FIELDS:
        col = entry.get(key)
        if not isinstance(col, list):
            raise CaptionsError(f"'{key}' must be a list")
        cols.append(col)
    if len({len(c) for c in cols}) != 1:
        raise CaptionsError(f"start, end and text differ in length ({', '.join(str(len(c)) for c in cols)})")
    lines = []
    for i, (s, e, t) in enumerate(zip(*cols, strict=True)):
        start, end = _number(s), _number(e)
        if start is None or end is None or start < 0:
            raise CaptionsError(f"line {i}: start and end must be finite non-negative numbers")
        if end < start:
            raise CaptionsError(f"line {i}: end {end} is before start {start}")
        if not isinstance(t, str):
            raise CaptionsError(f"line {i}: text must be a string")
        lines.append(Line(start, end, t))
    return Transcript(video_id, tuple(lines))


def read_entries(path: str | os.PathLike) -> list[Transcript | dict[str, Any]]:
    """Every video of a caption file in file order: a Transcript, or an error row for a malformed one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CaptionsError(f"cannot read {str(path)!r}: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CaptionsError(f"{str(path)!r} is not valid JSON: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise CaptionsError(f"{str(path)!r} must be a JSON object of videos, got {type(data).__name__}")
    out: list[Transcript | dict[str, Any]] = []
    for vid, entry in data.items():
        try:
            out.append(parse_entry(vid, entry))
        except CaptionsError as e:
            out.append({"id": vid, "line": None, "source": str(path), "reason": str(e)})
    return out


def read_captions(path: str | os.PathLike) -> tuple[list[Transcript], list[dict[str, Any]]]:
    """All well-formed videos of a caption file (in file order) and one error row per malformed one."""
    entries = read_entries(path)
    return [e for e in entries if isinstance(e, Transcript)], [e for e in entries if isinstance(e, dict)]


def load_captions(path: str | os.PathLike) -> dict[str, Transcript]:
    """The well-formed videos of a caption file by id (for metrics; malformed entries are left out)."""
    return {t.video_id: t for t in read_captions(path)[0]}


def write_captions(path: str | os.PathLike, transcripts: Iterable[Transcript]) -> None:
    """Write a caption file atomically, videos in the given order."""
    obj = {t.video_id: t.to_dict() for t in transcripts}
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False) + "\n")


def caption_key(text: str) -> str:
    """What makes two captions the same: their words, case and punctuation aside, bullet and time left out."""
    return " ".join(re.findall(r"[a-z0-9']+", _LEAD.sub("", text, count=1).lower()))


def repeats_a_line(reply: str) -> bool:
    """True once a reply's last complete line says what an earlier line said (a generation loop)."""
    lines = [k for k in map(caption_key, reply.split("\n")[:-1]) if k]
    return len(lines) > 1 and lines[-1] in lines[:-1]
