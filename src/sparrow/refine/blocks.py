"""Transcript lines grouped into prompt blocks, as HowToCaption does it but without its bug: every line
of every block carries its time (``"12s: ..."``), the first line of each block included.

A block holds whole lines, at most ``max_words`` words (a single longer line is a block of its own);
its window is [floor(first start), ceil(last end)] seconds, the range a caption written from it may be
timed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparrow.caption_metrics.text import words
from sparrow.captions import Line, Transcript

MAX_WORDS = 200


@dataclass(frozen=True)
class Block:
    video_id: str
    index: int  # position of the block in its video
    lines: tuple[Line, ...]

    @property
    def window(self) -> tuple[int, int]:
        return math.floor(self.lines[0].start), math.ceil(max(x.end for x in self.lines))

    def render(self) -> str:
        """The block as prompt text: one ``"{int(start)}s: text"`` line per transcript line."""
        return "\n".join(timed(x.start, x.text) for x in self.lines)


def timed(seconds: float, text: str) -> str:
    return f"{int(seconds)}s: {text.strip()}"


def make_blocks(transcript: Transcript, max_words: int = MAX_WORDS) -> list[Block]:
    """Blocks of consecutive lines in time order; empty lines are skipped."""
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    lines = sorted((x for x in transcript.lines if x.text.strip()), key=lambda x: (x.start, x.end))
    groups: list[list[Line]] = []
    count = 0
    for line in lines:
        n = len(words(line.text))
        if groups and count + n <= max_words:
            groups[-1].append(line)
            count += n
        else:
            groups.append([line])
            count = n
    return [Block(transcript.video_id, i, tuple(g)) for i, g in enumerate(groups)]
