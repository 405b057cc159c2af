"""`sparrow eval` without a model: benchmark-row validation, answer parsing, sampling overrides and
swap's seeded pairing of each question with another video."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparrow.eval.answers import parse_answer
from sparrow.eval.bench import parse_bench_row, read_bench
from sparrow.eval.conditions import build_sample, parse_sampling_overrides, swap_videos
from sparrow.model import VideoLLMConfig
from sparrow.records import RecordError

# ------------------------------------------------------------------------------------------ parsing

OPTS = ["red", "blue", "dark red", "green"]


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("B", "B"),
        ("B.", "B"),
        ("(C)", "C"),
        ("B. blue", "B"),
        ("  **D**", "D"),
        ("b", "B"),
        ("The answer is C", "C"),
        ("answer: (D)", "D"),
        ("The correct option is B because the ball moves.", "B"),
        ("I would say C.", "C"),
        ("blue", "B"),  # the option's text counts
        ("Based on the video, the ball is green.", "D"),  # "Based" is not B; the text names green
        ("dark red", "C"),  # the longest matching option, not "red" inside it
        ("Based on the video.", None),  # a letter inside a word is not an answer
        ("A man walks in.", None),  # the article A
        ("the answer is a bit unclear", None),
        ("E", None),  # no option E among four
        ("Answer: E", None),
        ("red or green", None),  # two options named: ambiguous
        ("", None),
    ],
)
def test_parse_answer(reply, expected):
    assert parse_answer(reply, OPTS) == expected


def test_bench_rows_validated(tmp_path):
    good = {"id": "a", "video": "v.mp4", "question": "Q?", "options": ["x", "y"], "answer": "B"}
    assert parse_bench_row(good).answer_index == 1
    assert parse_bench_row({**good, "answer": 0}).answer == "A"
    p = tmp_path / "b.jsonl"
    lines = [good, {**good, "id": "b", "answer": "C"}, {**good, "id": "c", "options": ["x"]}, good]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n")
    rows, bad = read_bench(p)
    assert [r.id for r in rows] == ["a"]
    reasons = [b.reason for b in bad]
    assert len(bad) == 4
    assert "not one of the 2 options" in reasons[0] and "at least two" in reasons[1]
    assert "duplicate id" in reasons[2] and "invalid JSON" in reasons[3]


def test_sampling_overrides():
    cfg = VideoLLMConfig()
    s = parse_sampling_overrides("strategy=uniform,num_frames=16,timestamps=none,header=false", cfg.sampling)
    assert (s.strategy, s.num_frames, s.timestamps, s.header) == ("uniform", 16, "none", False)
    assert parse_sampling_overrides("fps=2.5,max_frames=none", cfg.sampling).fps == 2.5
    with pytest.raises(ValueError, match="bad sampling override"):
        parse_sampling_overrides("frames=3", cfg.sampling)


# ------------------------------------------------------------------------------------------ swap


def _rows(videos: list[str | None]) -> list:
    return [
        parse_bench_row({"id": f"r{i}", "video": v, "question": "Q?", "options": ["a", "b"], "answer": "A"})
        for i, v in enumerate(videos)
    ]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_swap_videos_is_a_seeded_derangement_onto_other_video_files(seed):
    rng = np.random.default_rng(seed)
    # 40 questions over 12 videos, 1 to 6 questions each (no video holds half), and two rows without one.
    videos = [f"v{k}.mp4" for k in range(12) for _ in range(int(rng.integers(1, 7)))]
    rows = _rows([*videos, None, None])
    swap = swap_videos(rows, seed)
    own = {r.id: r.video for r in rows}
    assert set(swap) == {r.id for r in rows if r.video}  # rows without a video are not paired
    assert all(swap[i] != own[i] for i in swap)  # every question sees another video *file*
    assert sorted(swap.values()) == sorted(videos)  # each video shown as often as in the benchmark
    assert swap_videos(rows, seed) == swap  # fixed by the seed ...
    assert swap_videos(rows, seed + 100) != swap  # ... and another seed pairs differently


def test_swap_videos_when_one_video_holds_most_questions():
    # v0 holds 4 of 6 questions: some must see their own file, but no row keeps its own place.
    rows = _rows(["v0", "v0", "v0", "v0", "v1", "v2"])
    swap = swap_videos(rows, 0)
    assert sorted(swap.values()) == sorted(r.video for r in rows)
    # a derangement of rows: the mapping is a permutation with no row paired with itself
    assert len(swap) == 6 and sum(swap[r.id] == r.video for r in rows) <= 2
    with pytest.raises(ValueError, match="at least two questions with a video"):
        swap_videos(_rows(["v0", None]), 0)
    with pytest.raises(RecordError, match="no other video"):
        build_sample(rows[0], "swap")
    sample = build_sample(rows[0], "swap", swap_video="v9.mp4")
    assert sample.media[0].path == "v9.mp4" and sample.messages == build_sample(rows[0], "video").messages
