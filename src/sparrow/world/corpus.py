"""A text corpus in the world's vocabulary, the input of ``sparrow synth``: long documents (event logs
and narratives of imagined scenes) with questions about them that need the same skills as the video
questions — order, counting, when, how long, what was written.

Rows: ``{"id", "context", "question", "answer"}`` (free-form short answer, as in Sparrow's long-text
sources) plus ``options`` / ``answer_index`` (4 choices), ``mcq_question`` / ``mcq_answer`` (the same
question in the shared multiple-choice format: ``sparrow synth --fields question=mcq_question,
answer=mcq_answer`` makes synthetic samples in the format the benchmarks are scored in), ``category``
and ``doc_id``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sparrow.mcq import format_mcq_answer, format_mcq_prompt
from sparrow.world.vocab import COLOURS, SHAPES, SPEEDS, WORDS, article, mmss, seconds_text

FILLER: tuple[str, ...] = (
    "For a while nothing else changed.",
    "The background stayed the same dull grey.",
    "The frame was quiet.",
    "Nothing moved at the edges of the picture.",
    "A faint flicker ran across the screen, but it meant nothing.",
    "The camera did not move at any point.",
    "It was hard to say whether anything would happen next.",
    "The light stayed even and flat.",
    "Anyone watching would have had to wait a little.",
    "The picture remained still, as if someone had paused it.",
)
NARRATIVE_OPEN: tuple[str, ...] = ("At {t}", "Around {t}", "Then, at {t}", "Later, at {t}", "At exactly {t}")
SPEED_PROSE = {
    "slowly": "slow and unhurried",
    "steadily": "at an even pace",
    "quickly": "fast, almost in a rush",
}


@dataclass
class _WordShow:
    text: str
    start: int
    end: int


@dataclass
class _Entry:
    name: str
    t: int


def _sentences(rng: random.Random, n_words: int) -> tuple[list[str], list[_WordShow], list[_Entry]]:
    vocab = rng.sample(WORDS, rng.randint(6, 10))
    objs = [f"{c} {s}" for c, s in zip(rng.sample(sorted(COLOURS), 5), rng.sample(SHAPES, 5), strict=True)]
    on: dict[str, bool] = {o: False for o in objs}
    shows: list[_WordShow] = []
    entries: list[_Entry] = []
    paras: list[str] = []
    cur: list[str] = []
    t, count = rng.randint(0, 20), 0
    while count < n_words:
        narrative = rng.random() < 0.5
        opener = rng.choice(NARRATIVE_OPEN).format(t=mmss(t))
        if rng.random() < 0.55:
            w, d = rng.choice(vocab), rng.randint(2, 8)
            shows.append(_WordShow(w, t, t + d))
            s = (
                f"{opener}, the word {w} appeared in white letters at the top and stayed for {seconds_text(d)}."
                if narrative
                else f"[{mmss(t)}] Word shown: {w} ({seconds_text(d)})."
            )
            t += d
        else:
            o = rng.choice(objs)
            if not on[o]:
                side, speed = rng.choice(("left", "right")), rng.choice(list(SPEEDS))
                entries.append(_Entry(o, t))
                s = (
                    f"{opener}, {article(o)} {o} came in from the {side}, {SPEED_PROSE[speed]}, and then stood still."
                    if narrative
                    else f"[{mmss(t)}] {article(o).capitalize()} {o} enters from the {side}, moving {speed}, and stops."
                )
            else:
                side = rng.choice(("left", "right"))
                s = (
                    f"{opener}, the {o} set off again and left the picture on the {side}."
                    if narrative
                    else f"[{mmss(t)}] The {o} leaves to the {side}."
                )
            on[o] = not on[o]
        cur.append(s)
        count += len(s.split())
        for f in rng.sample(FILLER, rng.choice((0, 0, 1, 1, 2, 3))):
            cur.append(f)
            count += len(f.split())
        t += rng.randint(3, 40)
        if len(cur) >= rng.randint(4, 9):
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras, shows, entries


def _first(shows: list[_WordShow], w: str) -> _WordShow:
    return next(s for s in shows if s.text == w)


def _q_order(rng, shows, entries, vocab):
    firsts: dict[str, int] = {}
    for s in shows:
        firsts.setdefault(s.text, s.start)
    if len(firsts) < 4:
        return None
    pick = rng.sample(sorted(firsts), 4)
    ans = min(pick, key=lambda w: firsts[w])
    q = f"Which of these words was shown first: {', '.join(pick[:3])} or {pick[3]}?"
    return "temporal_order", q, ans, [w for w in pick if w != ans]


def _q_count(rng, shows, entries, vocab):
    w = rng.choice(sorted({s.text for s in shows}))
    n = sum(s.text == w for s in shows)
    start = rng.choice([s for s in range(n - 3, n + 1) if s >= 1])
    return (
        "counting",
        f"How many times was the word {w} shown?",
        str(n),
        [str(v) for v in range(start, start + 4) if v != n],
    )


def _q_when(rng, shows, entries, vocab):
    w = rng.choice(sorted({s.text for s in shows}))
    first = _first(shows, w)
    others = sorted({mmss(s.start) for s in shows if s.text != w} - {mmss(first.start)})
    if len(others) < 3:
        return None
    return (
        "temporal_localization",
        f"At what time was the word {w} first shown?",
        mmss(first.start),
        rng.sample(others, 3),
    )


def _q_duration(rng, shows, entries, vocab):
    w = rng.choice(sorted({s.text for s in shows}))
    first = _first(shows, w)
    n = first.end - first.start
    wrong = rng.sample([v for v in range(2, 9) if v != n], 3)
    return (
        "duration_speed",
        f"For how many seconds was the word {w} shown the first time?",
        seconds_text(n),
        [seconds_text(v) for v in wrong],
    )


def _q_written(rng, shows, entries, vocab):
    cands = []
    for e in entries:
        nxt = next((s for s in shows if s.start >= e.t), None)
        if nxt is not None and all(x.name != e.name or x.t == e.t for x in entries if x.t <= e.t):
            cands.append((e, nxt))
    if not cands:
        return None
    e, nxt = rng.choice(cands)
    wrong = rng.sample([w for w in vocab if w != nxt.text], 3)
    return "ocr", f"Which word was shown next after the {e.name} first came in?", nxt.text, wrong


QUESTION_KINDS = (_q_order, _q_count, _q_when, _q_duration, _q_written)


def make_document(doc_id: str, seed: int, words: tuple[int, int], n_questions: int) -> tuple[str, list[dict]]:
    """One document and its questions (options unplaced: ``wrong`` holds the three wrong answers)."""
    rng = random.Random(f"sparrow-world/corpus/{seed}/{doc_id}")
    paras, shows, entries = _sentences(rng, rng.randint(*words))
    title = f"Scene log {doc_id.split('-')[-1]}. What was seen on the screen, in order, with the time of each event."
    context = "\n\n".join([title, *paras])
    vocab = sorted({s.text for s in shows} | set(rng.sample(WORDS, 6)))
    qs: list[dict[str, Any]] = []
    for kind in rng.sample(QUESTION_KINDS, len(QUESTION_KINDS)):
        if len(qs) >= n_questions or not shows:
            break
        got = kind(rng, shows, entries, vocab)
        if got is not None:
            cat, q, ans, wrong = got
            qs.append({"category": cat, "question": q, "answer": ans, "wrong": wrong})
    return context, qs


def corpus_rows(split: str, n_docs: int, seed: int, words: tuple[int, int], n_questions: int) -> list[dict]:
    """All rows of one split, answer positions balanced over the split."""
    pos_rng = random.Random(f"sparrow-world/corpus-positions/{seed}/{split}")
    rows: list[dict[str, Any]] = []
    perm: list[int] = []
    for i in range(n_docs):
        doc_id = f"corpus-{split}-{i:04d}"
        context, qs = make_document(doc_id, seed, words, n_questions)
        for k, q in enumerate(qs):
            if not perm:
                perm = pos_rng.sample(range(4), 4)
            pos = perm.pop()
            options = list(q["wrong"])
            options.insert(pos, q["answer"])
            rows.append(
                {"id": f"{doc_id}-q{k}", "context": context, "question": q["question"], "answer": q["answer"],
                 "options": options, "answer_index": pos, "category": q["category"], "doc_id": doc_id,
                 "mcq_question": format_mcq_prompt(q["question"], options),
                 "mcq_answer": format_mcq_answer(options, pos)}
            )  # fmt: skip
    return rows
