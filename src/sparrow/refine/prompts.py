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

from sparrow.io import LineError, iter_jsonl
from sparrow.refine.backends.base import Message
from sparrow.refine.blocks import Block, timed
from sparrow.refine.captions import Line, Transcript
from sparrow.refine.errors import PromptError
from sparrow.refine.metrics.text import words

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


def examples_from_truth(
    transcripts: dict[str, Transcript], truth: dict[str, Transcript], ids: list[str]
) -> list[Example]:
    """Few-shot examples from human-refined captions: each video's whole transcript and its refined
    captions as timed lines (in the world: the ground truth of held-out videos, never scored)."""
    out = []
    for vid in ids:
        if vid not in transcripts or vid not in truth:
            raise PromptError(f"no transcript or refined captions for example video {vid!r}")
        lines = [sorted(t.lines, key=lambda x: (x.start, x.end)) for t in (transcripts[vid], truth[vid])]
        out.append(Example(*("\n".join(timed(x.start, x.text) for x in ls) for ls in lines)))
    return out


# Words that say nothing about what is seen; lines are aligned on the rest.
_FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "it",
        "it's",
        "there",
        "there's",
        "and",
        "so",
        "just",
        "in",
        "on",
        "at",
        "of",
        "to",
        "from",
        "this",
        "that",
        "i",
        "you",
        "um",
        "uh",
        "okay",
        "yeah",
        "oh",
        "well",
        "now",
        "then",
        "here",
    ]
)
NO_CAPTION = "No caption."  # the reply a line-level example gives for chatter


def _content(text: str) -> set[str]:
    return {w for w in words(text) if w not in _FILLER}


def _bigrams(text: str) -> set[tuple[str, str]]:
    w = words(text)
    return set(zip(w, w[1:], strict=False))


def align_lines(
    transcript: Transcript, truth: Transcript, window: float = 4.0
) -> list[tuple[Line, Line | None]]:
    """Transcript lines with the refined caption each became, one to one: pairs starting within ``window``
    seconds (ASR times drift by seconds) are taken best first (most shared content words, then shared
    word pairs, then the smaller time gap). A line that shares no content word with any caption of the
    video is chatter (None); a line left without a caption otherwise (its candidates taken by better
    lines, or too far in time) is left out: what it became is unclear."""
    lines = sorted(transcript.lines, key=lambda x: (x.start, x.end))
    said = [_content(x.text) for x in lines]
    written = [_content(c.text) for c in truth.lines]
    scored = []
    for i, line in enumerate(lines):
        for j, cap in enumerate(truth.lines):
            shared = len(said[i] & written[j])
            if shared and abs(cap.start - line.start) <= window:
                pairs = len(_bigrams(line.text) & _bigrams(cap.text))
                scored.append((-shared, -pairs, abs(cap.start - line.start), i, j))
    match: dict[int, Line] = {}
    used: set[int] = set()
    for *_, i, j in sorted(scored):
        if i not in match and j not in used:
            match[i] = truth.lines[j]
            used.add(j)
    chatter = {i for i in range(len(lines)) if not any(said[i] & w for w in written)}
    return [(x, match.get(i)) for i, x in enumerate(lines) if i in match or i in chatter]


def line_examples(
    transcripts: dict[str, Transcript], truth: dict[str, Transcript], ids: list[str], n: int
) -> list[Example]:
    """``n`` one-line examples from human-refined videos, for prompting one transcript line at a time (what
    a small LM can follow): a spoken line and the caption it became, or NO_CAPTION for chatter. One in
    four is chatter (a line that shares no content word with any caption); the others cycle through the
    kinds of rewrite (the caption's words the line lacks), commonest first, so that the examples show
    every common pattern before any repeats."""
    pairs = []
    for vid in ids:
        if vid not in transcripts or vid not in truth:
            raise PromptError(f"no transcript or refined captions for example video {vid!r}")
        pairs += align_lines(transcripts[vid], truth[vid])
    spoken = {w for line, _ in pairs for w in words(line.text)}
    spoken_content = {w for line, _ in pairs for w in _content(line.text)}
    openings = {tuple(words(line.text)[:2]) for line, cap in pairs if cap is not None}
    kinds: dict[str, list[tuple[float, Example]]] = {}
    chatter: list[Example] = []
    for line, cap in pairs:
        said = timed(line.start, line.text)
        if cap is None:
            if tuple(words(line.text)[:2]) not in openings:  # "it says key" is a misheard word, not chatter
                chatter.append(Example(said, NO_CAPTION))
            continue
        if (_content(cap.text) - _content(line.text)) & spoken_content:
            continue  # the caption swaps a word narrators use (a misheard colour): a confusing example
        # the kind: the caption's words that no spoken line uses ("stands still", "the word ... is shown")
        kind = " ".join(w for w in words(cap.text) if w not in spoken)
        clarity = len(_content(line.text) & _content(cap.text)) / max(1, len(_content(cap.text)))
        kinds.setdefault(kind, []).append((clarity, Example(said, timed(line.start, cap.text))))
    rewrites: list[Example] = []
    # the commonest kinds first: a rare kind is often a noisy pair (the transcript misheard a colour)
    queues = [
        [ex for _, ex in sorted(q, key=lambda x: -x[0])]
        for q in sorted(kinds.values(), key=len, reverse=True)
    ]
    while len(rewrites) < n - min(len(chatter), n // 4) and any(queues):
        for q in queues:
            if q and len(rewrites) < n - min(len(chatter), n // 4):
                rewrites.append(q.pop(0))
    # chatter after every third rewrite, not all in one place: a small LM copies the nearest pattern
    out: list[Example] = []
    for i, ex in enumerate(rewrites):
        out.append(ex)
        if i % 3 == 2 and chatter and len(out) < n:
            out.append(chatter.pop(0))
    return out[:n]


def nearest_examples(examples: list[Example], text: str, k: int) -> list[Example]:
    """The ``k`` examples whose transcript reads most like ``text`` (shared words, then shared word pairs;
    ties keep the file's order), most alike last: the nearest example is what a small LM copies, so it
    should show how to rewrite this very kind of line. When the pool holds lines answered NO_CAPTION,
    the most alike of them comes first (when ``k`` > 1), so that dropping chatter is always shown."""
    said, pairs = set(words(text)), _bigrams(text)

    def distance(i: int) -> tuple[int, int, int]:
        t = examples[i].transcript
        return -len(said & set(words(t))), -len(pairs & _bigrams(t)), i

    ranked = sorted(range(len(examples)), key=distance)
    chatter = [i for i in ranked if examples[i].captions == NO_CAPTION][: 1 if k > 1 else 0]
    others = [i for i in ranked if i not in chatter][: k - len(chatter)]
    return [examples[i] for i in chatter + others[::-1]] if k > 0 else []
