"""Reading an LLM's reply into timed captions, robustly: plain ``"12s: sentence"`` lines (bullets,
numbering and markdown bold tolerated) or, optionally, a JSON list (``[{"time": 12, "caption": ...}]``
or ``["12s: ..."]``, fenced or not). Servers that ignore structured-output requests are the norm, so
JSON is never required.

A caption timed outside its block's window is dropped and reported, and so is a caption that repeats an
earlier one of its block word for word (small LMs fall into loops); untimed lines are ignored. Each
caption lasts ``duration`` seconds (HowToCaption's 8 s).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sparrow.captions import Line, caption_key
from sparrow.refine.blocks import Block

DURATION = 8.0
_LINE = re.compile(
    r"^\s*(?:[-*•]\s*|\d+[.)]\s+)?\**\s*(\d+(?:\.\d+)?)\s*(?:s|sec|seconds?)\s*\**\s*[:\-–]\s*(.+?)\s*$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass
class Parsed:
    captions: list[Line] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # one reason per caption dropped
    untimed: int = 0  # non-empty lines without a time


def _json_items(reply: str) -> list[Any] | None:
    for text in [*_FENCE.findall(reply), reply]:
        start, end = text.find("["), text.rfind("]")
        if start < 0 or end <= start:
            continue
        try:
            value = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            return value
    return None


def _from_json(items: list[Any]) -> list[tuple[float, str]] | None:
    out = []
    for it in items:
        if isinstance(it, str):
            m = _LINE.match(it)
            if m is None:
                return None
            out.append((float(m.group(1)), m.group(2)))
        elif isinstance(it, dict):
            t = next((it[k] for k in ("time", "start", "timestamp", "t") if k in it), None)
            text = next((it[k] for k in ("caption", "text", "sentence") if k in it), None)
            if isinstance(t, str):
                t = t.strip().rstrip("s")
            try:
                t = float(t)
            except (TypeError, ValueError):
                return None
            if not isinstance(text, str):
                return None
            out.append((t, text))
        else:
            return None
    return out


def parse_reply(reply: str, block: Block, duration: float = DURATION) -> Parsed:
    """Timed captions of one block's reply, in reply order."""
    parsed = Parsed()
    items = _json_items(reply)
    pairs = _from_json(items) if items is not None else None
    if pairs is None:
        pairs = []
        for raw in reply.splitlines():
            m = _LINE.match(raw)
            if m is not None:
                pairs.append((float(m.group(1)), m.group(2)))
            elif raw.strip():
                parsed.untimed += 1
    lo, hi = block.window
    seen: set[str] = set()
    for t, text in pairs:
        text = text.strip().strip("*").strip()
        if not text:
            continue
        if not lo <= t <= hi:
            parsed.dropped.append(f"{t:g}s is outside the block's window {lo}-{hi}s: {text[:60]}")
            continue
        if caption_key(text) in seen:
            parsed.dropped.append(f"{t:g}s repeats an earlier caption: {text[:60]}")
            continue
        seen.add(caption_key(text))
        parsed.captions.append(Line(t, t + duration, text))
    return parsed
