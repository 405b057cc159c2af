"""One-line few-shot examples from the world's human-refined captions, for prompting a small LM one
transcript line at a time: each spoken line aligned with the caption it became (content words, ASR time
drift), chatter told apart, and pairs where the transcript misheard a colour left out. These heuristics
know how the world's narrators speak; the refine job itself knows nothing of them."""

from __future__ import annotations

from sparrow.caption_metrics.text import word_pairs, words
from sparrow.captions import Line, Transcript
from sparrow.refine.blocks import timed
from sparrow.refine.errors import PromptError
from sparrow.refine.prompts import NO_CAPTION, Example

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


def _content(text: str) -> set[str]:
    return {w for w in words(text) if w not in _FILLER}


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
                pairs = len(word_pairs(line.text) & word_pairs(cap.text))
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
