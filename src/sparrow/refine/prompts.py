"""Prompt templates as files with a version hash, few-shot examples and frame descriptions.

A template file has a ``[system]`` and a ``[user]`` section; the user text may use ``$transcript`` (the
block's timed lines) and ``$frames`` (the frame descriptions inside the block's window, as timed lines
under a heading, or nothing). Its version is the first 12 hex digits of the sha256 of the file, so the
response cache never mixes replies to two wordings. Examples (``--examples FILE``, JSONL rows
``{"transcript": "12s: ...", "captions": "12s: ..."}``) become earlier user / assistant turns.
"""

from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sparrow.caption_metrics.text import word_pairs, words
from sparrow.chat.base import Message
from sparrow.io import LineError, iter_jsonl
from sparrow.refine.blocks import Block, timed
from sparrow.refine.errors import PromptError

TEMPLATES = ("refine", "refine-line", "describe")
FRAMES_HEADING = "What the video frames show at these times:"


@dataclass(frozen=True)
class FrameNote:
    """What an image-language model saw in the frame at ``time`` seconds."""

    time: float
    text: str


@dataclass(frozen=True)
class Example:
    transcript: str
    captions: str


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str
    version: str

    @classmethod
    def parse(cls, name: str, text: str) -> PromptTemplate:
        sections: dict[str, list[str]] = {}
        current = None
        for line in text.splitlines():
            if line.strip() in ("[system]", "[user]"):
                current = line.strip()[1:-1]
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
        if "user" not in sections:
            raise PromptError(f"template {name!r} has no [user] section")
        user = "\n".join(sections["user"]).strip()
        try:
            string.Template(user).substitute(transcript="", frames="")
        except (KeyError, ValueError) as e:
            raise PromptError(f"template {name!r}: only $transcript and $frames may be used ({e})") from e
        version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        return cls(name, "\n".join(sections.get("system", [])).strip(), user, version)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> PromptTemplate:
        """A packaged template by name (``refine``, ``describe``) or a template file."""
        if str(name_or_path) in TEMPLATES:
            text = (
                resources.files("sparrow.refine").joinpath(f"templates/{name_or_path}.txt").read_text("utf-8")
            )
            return cls.parse(str(name_or_path), text)
        path = Path(name_or_path)
        try:
            return cls.parse(path.stem, path.read_text(encoding="utf-8"))
        except OSError as e:
            raise PromptError(f"cannot read template {str(path)!r}: {e.strerror}") from e

    def user_text(self, transcript: str, frames: str = "") -> str:
        return string.Template(self.user).substitute(transcript=transcript, frames=frames).strip()

    def messages(
        self,
        block: Block,
        frames: list[FrameNote] = (),
        examples: list[Example] = (),
    ) -> tuple[Message, ...]:
        """The chat of one block: system, the examples as earlier turns, then the block."""
        out = [Message("system", self.system)] if self.system else []
        for ex in examples:
            out += [Message("user", self.user_text(ex.transcript)), Message("assistant", ex.captions.strip())]
        out.append(Message("user", self.user_text(block.render(), frames_text(block, frames))))
        return tuple(out)


def frames_text(block: Block, frames: list[FrameNote]) -> str:
    """The frame descriptions that fall inside the block's window, as timed lines under a heading."""
    lo, hi = block.window
    notes = sorted((f for f in frames if lo <= f.time <= hi), key=lambda f: f.time)
    if not notes:
        return ""
    return "\n".join([FRAMES_HEADING, *(timed(f.time, f.text) for f in notes)]) + "\n"


def load_examples(path: str | os.PathLike) -> list[Example]:
    """Few-shot examples from JSONL; any bad row is fatal (a user picks these few rows by hand)."""
    out = []
    try:
        rows = list(iter_jsonl(path))
    except OSError as e:
        raise PromptError(f"cannot read examples {str(path)!r}: {e.strerror}") from e
    for line, row in rows:
        if isinstance(row, LineError):
            raise PromptError(f"{path}:{line}: {row.reason}")
        if not (
            isinstance(row, dict)
            and isinstance(row.get("transcript"), str)
            and isinstance(row.get("captions"), str)
        ):
            raise PromptError(f"{path}:{line}: an example needs string 'transcript' and 'captions'")
        out.append(Example(row["transcript"], row["captions"]))
    return out


NO_CAPTION = "No caption."  # the reply a line-level example gives for chatter


def nearest_examples(examples: list[Example], text: str, k: int) -> list[Example]:
    """The ``k`` examples whose transcript reads most like ``text`` (shared words, then shared word pairs;
    ties keep the file's order), most alike last: the nearest example is what a small LM copies, so it
    should show how to rewrite this very kind of line. When the pool holds lines answered NO_CAPTION,
    the most alike of them comes first (when ``k`` > 1), so that dropping chatter is always shown."""
    said, pairs = set(words(text)), word_pairs(text)

    def distance(i: int) -> tuple[int, int, int]:
        t = examples[i].transcript
        return -len(said & set(words(t))), -len(pairs & word_pairs(t)), i

    ranked = sorted(range(len(examples)), key=distance)
    chatter = [i for i in ranked if examples[i].captions == NO_CAPTION][: 1 if k > 1 else 0]
    others = [i for i in ranked if i not in chatter][: k - len(chatter)]
    return [examples[i] for i in chatter + others[::-1]] if k > 0 else []
