"""Transcript blocks, reply parsing, prompt templates, few-shot examples, frame descriptions, the
response cache and the hf backend."""

from __future__ import annotations

import json

import pytest

from sparrow.captions import Line, Transcript, caption_key, repeats_a_line
from sparrow.chat.base import Backend, Decoding, Message, Request, Response
from sparrow.chat.cache import CachedBackend, ResponseCache
from sparrow.flywheel.line_examples import align_lines, line_examples
from sparrow.refine.blocks import make_blocks
from sparrow.refine.frames import describe_frames
from sparrow.refine.parse import parse_reply
from sparrow.refine.prompts import (
    NO_CAPTION,
    Example,
    FrameNote,
    PromptError,
    PromptTemplate,
    load_examples,
    nearest_examples,
)


def transcript(*lines: tuple[float, float, str]) -> Transcript:
    return Transcript("v", tuple(Line(s, e, t) for s, e, t in lines))


T = transcript(
    (12.4, 14.0, "a red circle comes in from the left"),  # 8 words
    (0.5, 2.0, "um okay so"),  # 3 words, sorted first
    (20.0, 23.0, "the red circle just sits there"),  # 6 words
    (30.0, 31.0, "   "),  # empty: skipped
    (40.2, 44.9, "and the red circle goes off to the right"),  # 9 words
)


def test_blocks_time_every_line_including_the_first_of_each_block():
    blocks = make_blocks(T, max_words=12)
    assert [len(b.lines) for b in blocks] == [2, 1, 1]  # 3+8 | 6 (+9 > 12) | 9
    assert blocks[0].render() == "0s: um okay so\n12s: a red circle comes in from the left"
    assert blocks[1].render() == "20s: the red circle just sits there"
    assert blocks[2].render() == "40s: and the red circle goes off to the right"
    for b in blocks:  # HowToCaption's bug: the first line of later blocks lost its time
        assert all(line.split(":")[0].endswith("s") for line in b.render().splitlines())
    assert [b.window for b in blocks] == [(0, 14), (20, 23), (40, 45)]
    assert len(make_blocks(T, max_words=200)) == 1
    assert [len(b.lines) for b in make_blocks(T, max_words=1)] == [1, 1, 1, 1]  # long lines stay whole


def test_parse_plain_text_json_and_out_of_block_captions():
    block = make_blocks(T, max_words=12)[0]  # window 0-14 s
    reply = (
        "Here are the captions:\n"
        "0s: A person starts the video.\n"
        "- 12s: A red circle enters from the left.\n"
        "2. **13 s** - The circle moves right.\n"
        "30s: The circle leaves.\n"
    )
    p = parse_reply(reply, block)
    assert [(c.start, c.end, c.text) for c in p.captions] == [
        (0.0, 8.0, "A person starts the video."),
        (12.0, 20.0, "A red circle enters from the left."),
        (13.0, 21.0, "The circle moves right."),
    ]
    assert (
        p.untimed == 1
        and len(p.dropped) == 1
        and p.dropped[0].startswith("30s is outside the block's window 0-14s")
    )
    fenced = (
        '```json\n[{"time": 12, "caption": "A red circle enters."}, {"time": "40s", "caption": "Late."}]\n```'
    )
    p = parse_reply(fenced, block)
    assert [(c.start, c.text) for c in p.captions] == [(12.0, "A red circle enters.")] and len(p.dropped) == 1
    assert [c.text for c in parse_reply('["1s: One.", "2s: Two."]', block).captions] == ["One.", "Two."]
    # a JSON list that is not captions falls back to the text lines
    assert [c.text for c in parse_reply("[1, 2]\n3s: Three.", block).captions] == ["Three."]
    assert parse_reply("no captions at all", block).captions == []


def test_a_looping_reply_keeps_each_caption_once():
    block = make_blocks(T, max_words=12)[0]  # window 0-14 s
    reply = "1s: The word EGG is shown.\n2s: the word egg is shown\n3s: A red circle enters.\n4s: The word EGG is shown!"
    p = parse_reply(reply, block)
    assert [c.text for c in p.captions] == ["The word EGG is shown.", "A red circle enters."]
    assert len(p.dropped) == 2 and all("repeats an earlier caption" in d for d in p.dropped)
    assert (
        caption_key("12s: The word EGG is shown.")
        == caption_key("the word egg is shown")
        == "the word egg is shown"
    )
    assert not repeats_a_line("1s: A.\n2s: B.\n")
    assert repeats_a_line("1s: A.\n2s: B.\n3s: a\n")
    assert not repeats_a_line("1s: A.\n2s: B.\n3s: A")  # the last line is not finished yet


def test_templates_examples_and_frames(tmp_path):
    tpl = PromptTemplate.load("refine")
    assert len(tpl.version) == 12
    block = make_blocks(T, max_words=12)[0]
    frames = [FrameNote(4.0, "A red circle at the left edge."), FrameNote(30.0, "Nothing.")]
    ex = tmp_path / "ex.jsonl"
    ex.write_text(
        json.dumps({"transcript": "3s: there's a blue square", "captions": "3s: A blue square is in view."})
        + "\n"
    )
    msgs = tpl.messages(block, frames, load_examples(ex))
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert "3s: there's a blue square" in msgs[1].text and msgs[2].text == "3s: A blue square is in view."
    last = msgs[-1].text
    assert "0s: um okay so\n12s: a red circle comes in from the left" in last
    assert "4s: A red circle at the left edge." in last and "Nothing." not in last  # 30 s is outside 0-14
    custom = tmp_path / "mine.txt"
    custom.write_text("[system]\nBe brief.\n[user]\n$transcript\n")
    mine = PromptTemplate.load(custom)
    assert mine.version != tpl.version and mine.messages(block)[1].text == block.render()
    custom.write_text("[user]\n$transcript $unknown\n")
    with pytest.raises(PromptError, match="only \\$transcript and \\$frames"):
        PromptTemplate.load(custom)
    ex.write_text('{"transcript": "x"}\n')
    with pytest.raises(PromptError, match="ex.jsonl:1"):
        load_examples(ex)


class Counting(Backend):
    """Echoes the last user text; counts calls; fails requests whose text says so."""

    name, model = "counting", "echo"

    def __init__(self):
        self.calls = 0

    def complete(self, requests):
        self.calls += len(requests)
        out = []
        for r in requests:
            text = r.messages[-1].text
            out.append(Response(error="boom") if "fail" in text else Response(text=f"echo {text}", calls=1))
        return out


def test_cache_second_identical_run_makes_zero_calls(tmp_path):
    inner = Counting()
    backend = CachedBackend(inner, ResponseCache(tmp_path / "cache"))
    reqs = [
        Request((Message("user", t),), Decoding(max_tokens=5), seed=1, template="abc")
        for t in ("a", "b", "fail")
    ]
    first = backend.complete(reqs)
    assert inner.calls == 3 and [r.cached for r in first] == [False, False, False]
    second = backend.complete(reqs)
    assert [r.text for r in second[:2]] == ["echo a", "echo b"] and [r.cached for r in second] == [
        True,
        True,
        False,
    ]
    assert inner.calls == 4  # only the failed request is asked again
    # every part of the key matters: seed, decoding, template, images
    variants = [
        Request((Message("user", "a"),), Decoding(max_tokens=5), seed=2, template="abc"),
        Request((Message("user", "a"),), Decoding(max_tokens=6), seed=1, template="abc"),
        Request((Message("user", "a"),), Decoding(max_tokens=5), seed=1, template="xyz"),
        Request(
            (Message("user", "a", images=(b"\x89PNG\r\n\x1a\n0",)),),
            Decoding(max_tokens=5),
            seed=1,
            template="abc",
        ),
    ]
    backend.complete(variants)
    assert inner.calls == 8
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_describe_frames_sends_images_and_keeps_times():
    class Seeing(Backend):
        name, model = "seeing", "v"

        def complete(self, requests):
            return [
                Response(text="  A red\ncircle. ") if r.messages[-1].images else Response(error="no image")
                for r in requests
            ]

    notes, errors = describe_frames(
        Seeing(), PromptTemplate.load("describe"), [(2.0, b"png1"), (6.0, b"png2")], Decoding()
    )
    assert notes == [FrameNote(2.0, "A red circle."), FrameNote(6.0, "A red circle.")] and errors == []


@pytest.fixture(scope="session")
def smollm():
    from sparrow.chat.hf import HFBackend, HFConfig
    from sparrow.pretrained import part_status

    status = part_status("smollm2-135m-instruct")
    if not status.installed:
        pytest.skip(status.reason)

    return HFBackend(HFConfig(batch_size=4))


def test_hf_backend_batches_the_packaged_smollm(smollm):
    reqs = [Request((Message("user", f"Write the number {i}."),), Decoding(max_tokens=4)) for i in range(3)]
    reqs.append(Request((Message("user", "x", images=(b"\x89PNG\r\n\x1a\n",)),)))
    out = smollm.complete(reqs)
    assert all(r.error is None and r.text and 0 < r.completion_tokens <= 4 for r in out[:3])
    assert out[3].error.startswith("the hf backend reads text only")
    # greedy: batching does not change a reply
    assert smollm.complete(reqs[1:2])[0].text == out[1].text


def test_hf_backend_stops_a_row_that_loops(smollm):
    """SmolLM2 on a transcript that says one thing again and again lists it line after line (80 tokens
    without the stop): the row stops at the first repeat; the other row of the batch runs on."""
    ask = "Transcript:\n0s: it says egg\n1s: it says egg\n2s: it says egg\n3s: it says egg\nCaptions:"
    loop, other = smollm.complete(
        [
            Request((Message("user", ask),), Decoding(max_tokens=200)),
            Request((Message("user", "Say hi."),), Decoding(max_tokens=200)),
        ]
    )
    assert repeats_a_line(loop.text + "\n") and loop.completion_tokens < 30
    assert other.error is None and other.text


def timed_transcript(*rows: str) -> Transcript:
    """A transcript of video "v" from "START END text" rows."""
    return Transcript("v", tuple(Line(float(a), float(b), t) for a, b, t in (r.split(" ", 2) for r in rows)))


def test_line_examples_align_spoken_lines_one_to_one():
    spoken = timed_transcript(
        "0.0 1.0 there's an orange cross",
        "0.2 3.0 the orange cross just sits there",
        "1.0 2.0 um okay so",
        "1.5 2.5 it says cup",
        "3.0 4.0 and the orange cross goes off to the left",
        "1.8 2.5 it says cup",  # said twice; its one caption is taken: left out
    )
    truth = timed_transcript(
        "0.0 1.0 An orange cross is in view.",
        "0.0 3.0 The orange cross stands still.",
        "1.0 2.0 The word CUP is shown.",
        "3.5 4.0 The orange cross leaves to the left.",
    )
    pairs = [(a.text, b.text if b else None) for a, b in align_lines(spoken, truth)]
    assert pairs == [
        ("there's an orange cross", "An orange cross is in view."),
        ("the orange cross just sits there", "The orange cross stands still."),
        ("um okay so", None),
        ("it says cup", "The word CUP is shown."),
        ("and the orange cross goes off to the left", "The orange cross leaves to the left."),
    ]
    ex = line_examples({"v": spoken}, {"v": truth}, ["v"], 5)
    assert len(ex) == 5 and sum(e.captions == NO_CAPTION for e in ex) == 1
    assert ex[0] == Example("0s: there's an orange cross", "0s: An orange cross is in view.")
    assert ex[3].captions == NO_CAPTION  # chatter after the third rewrite, not first
    with pytest.raises(PromptError, match="no transcript"):
        line_examples({"v": spoken}, {}, ["v"], 4)


def test_nearest_examples_put_the_most_alike_last_and_always_show_chatter():
    pool = [
        Example("1s: it says cup", "1s: The word CUP is shown."),
        Example("2s: the red cross just sits there", "2s: The red cross stands still."),
        Example("3s: um okay so", NO_CAPTION),
        Example("4s: there's a red cross", "4s: A red cross is in view."),
    ]
    got = nearest_examples(pool, "9s: the blue cross just sits there", 3)
    assert got == [pool[2], pool[3], pool[1]]  # chatter first, then by shared words, the nearest last
    assert nearest_examples(pool, "it says jam", 1) == [pool[0]]
    assert nearest_examples(pool, "x", 0) == []
