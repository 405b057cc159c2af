"""The processor on real media: videos whose frames encode their index, frame sequences, images, text;
timestamp text per mode; max_length; errors; collate and packing; the tiny tokenizer; the clip cache."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from media import write_video
from PIL import Image
from processor_samples import decoded_indices, frames_sample, sampling, user_text, video_sample

from sparrow.model import (
    IGNORE_INDEX,
    Processor,
    ProcessorError,
    VideoLLMConfig,
    build_tiny_tokenizer,
    collate,
)
from sparrow.records import Media, Sample

# The shared fixtures, found by pytest where they are imported.
from processor_samples import clip_proc_fixture, proc_fixture  # noqa: F401  # isort: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    # 6 s at 10 fps, 64x64: frame i shows code i.
    write_video(d / "a.mp4", num_frames=60, fps=10, width=64, height=64)
    for i in range(8):
        Image.fromarray(np.full((40, 50, 3), 30 * i, dtype=np.uint8)).save(d / f"f{i}.png")
    (d / "broken.png").write_bytes(b"not a png")
    return d


# ------------------------------------------------------------------------------------------ video


def test_video_fps_apollo_timestamps_and_frames(proc, root):
    f = proc(video_sample(), root, sampling=sampling())
    assert decoded_indices(f) == [0, 10, 20, 30, 40, 50]
    assert f["group_sizes"].tolist() == [1] * 6
    want = (
        "The video lasts 00:06.\n"
        + "\n".join(f"clip from 00:0{t}-00:0{t + 1}: <V>" for t in range(6))
        + "\nWhat happens?"
    )
    assert user_text(proc, f) == want
    assert int((f["input_ids"] == proc.visual_token_id).sum()) == 6 * proc.tokens_per_group()


def test_video_frame_and_none_modes(proc, root):
    f = proc(video_sample(), root, sampling=sampling(timestamps="frame", fps=0.5))
    assert decoded_indices(f) == [0, 20, 40]
    assert (
        user_text(proc, f)
        == "The video lasts 00:06.\nFrame from 00:00: <V>\nFrame from 00:02: <V>\nFrame from 00:04: <V>\nWhat happens?"
    )
    f = proc(video_sample(), root, sampling=sampling(timestamps="none", fps=0.5, header=False))
    assert user_text(proc, f) == "<V>\nWhat happens?"  # bare tokens, back to back
    assert int((f["input_ids"] == proc.visual_token_id).sum()) == 3 * proc.tokens_per_group()


def test_video_segment_times_are_relative_to_its_start(proc, root):
    f = proc(video_sample(start=2.0, end=5.0), root, sampling=sampling())
    assert decoded_indices(f) == [20, 30, 40]
    assert user_text(proc, f) == (
        "The video lasts 00:03.\nclip from 00:00-00:01: <V>\nclip from 00:01-00:02: <V>\nclip from 00:02-00:03: <V>\nWhat happens?"
    )


def test_video_clips_one_token_group_per_clip(clip_proc, root):
    f = clip_proc(
        video_sample(), root, sampling=sampling(strategy="clips", fps=2.0, frames_per_clip=4, max_clips=2)
    )
    # Two clips of 4 frames at 2 fps, spread over the 6 s video.
    assert f["group_sizes"].tolist() == [4, 4]
    idx = decoded_indices(f)
    assert [b - a for a, b in zip(idx, idx[1:], strict=False)][:3] == [5, 5, 5]  # in-clip fps kept
    assert idx[4] > idx[3]
    text = user_text(clip_proc, f)
    prefixes = re.findall(r"clip from (\d\d:\d\d)-(\d\d:\d\d):", text)
    assert len(prefixes) == 2 and text.startswith("The video lasts 00:06.\n")
    assert int((f["input_ids"] == clip_proc.visual_token_id).sum()) == 2 * clip_proc.tokens_per_group()


def test_uniform_strategy(proc, root):
    f = proc(
        video_sample(),
        root,
        sampling=sampling(strategy="uniform", num_frames=4, timestamps="none", header=False),
    )
    assert len(decoded_indices(f)) == 4
    assert decoded_indices(f) == sorted(decoded_indices(f))


# ----------------------------------------------------------------------------- frames / image / text


def test_synthetic_frames_get_ordinal_markers(proc, clip_proc, root):
    f = proc(frames_sample(), root)
    assert f["pixel_values"].shape == (8, 3, 64, 64)
    assert user_text(proc, f) == "\n".join(f"Frame {i}: <V>" for i in range(1, 9)) + "\nRead the frames."
    # Frame content survives (uniform grey 30*i, resized from 40x50).
    grey = (f["pixel_values"][:, 0].mean(dim=(1, 2)) * 0.5 + 0.5) * 255
    np.testing.assert_allclose(grey.numpy(), [30 * i for i in range(8)], atol=1.0)
    f = clip_proc(frames_sample(n=7), root)
    assert f["group_sizes"].tolist() == [4, 3]
    assert user_text(clip_proc, f) == "Frames 1-4: <V>\nFrames 5-7: <V>\nRead the frames."
    f = proc(frames_sample(), root, sampling=sampling(timestamps="none"))
    assert user_text(proc, f) == "<V>\nRead the frames."
    with pytest.raises(ProcessorError, match="over max_frames 4"):
        proc(frames_sample(), root, sampling=sampling(max_frames=4))


def test_preextracted_frames_with_times(proc, root):
    ts = [0.5 * i for i in range(8)]  # 2 fps, 4 s
    f = proc(frames_sample(ts), root, sampling=sampling(fps=1.0))
    grey = (f["pixel_values"][:, 0].mean(dim=(1, 2)) * 0.5 + 0.5) * 255
    np.testing.assert_allclose(grey.numpy(), [0, 60, 120, 180], atol=1.0)  # frames 0, 2, 4, 6
    assert user_text(proc, f) == (
        "The video lasts 00:04.\nclip from 00:00-00:01: <V>\nclip from 00:01-00:02: <V>\n"
        "clip from 00:02-00:03: <V>\nclip from 00:03-00:04: <V>\nRead the frames."
    )
    f = proc(frames_sample(ts), root, sampling=sampling(strategy="uniform", num_frames=3, timestamps="frame"))
    assert user_text(proc, f) == (
        "The video lasts 00:04.\nFrame from 00:00: <V>\nFrame from 00:02: <V>\nFrame from 00:03: <V>\nRead the frames."
    )


def test_image_and_text_only(proc, root):
    img = Sample(
        id="img",
        messages=[{"role": "user", "content": "<image>\nColour?"}, {"role": "assistant", "content": "grey"}],
        media=[Media(type="image", path="f2.png")],
    )
    f = proc(img, root)
    assert f["pixel_values"].shape == (1, 3, 64, 64) and f["group_sizes"].tolist() == [1]
    assert user_text(proc, f) == "<V>\nColour?"
    txt = Sample(
        id="t", messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    )
    f = proc(txt, root)
    assert f["pixel_values"] is None and f["group_sizes"].numel() == 0
    assert (
        proc.tokenizer.decode(f["input_ids"])
        == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
    )
    g = proc(txt, root, generation=True)
    assert proc.tokenizer.decode(g["input_ids"]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert bool((g["labels"] == IGNORE_INDEX).all())


def test_several_media_in_order(proc, root):
    s = Sample(
        id="multi",
        messages=[
            {"role": "user", "content": "<image>\n<video>\nCompare the image with the frames."},
            {"role": "assistant", "content": "Same."},
        ],
        media=[Media(type="image", path="f5.png"), Media(type="frames", paths=["f1.png", "f2.png"])],
    )
    f = proc(s, root)
    assert user_text(proc, f) == "<V>\nFrame 1: <V>\nFrame 2: <V>\nCompare the image with the frames."
    grey = (f["pixel_values"][:, 0].mean(dim=(1, 2)) * 0.5 + 0.5) * 255
    np.testing.assert_allclose(grey.numpy(), [150, 30, 60], atol=1.0)
    assert f["group_sizes"].tolist() == [1, 1, 1]
    # An explicit media root replaces the record's root (and confines paths to it instead).
    g = proc(s, root / "elsewhere", media_root=root)
    assert torch.equal(g["pixel_values"], f["pixel_values"])


# ---------------------------------------------------------------------------------- max_length, errors


def test_max_length_never_cuts_visual_tokens(proc, root):
    full = proc(frames_sample(n=2), root)
    n = len(full["input_ids"])
    answer = int((full["labels"] != IGNORE_INDEX).sum())
    # Cutting into the answer (the last token is the newline after <|im_end|>) keeps the prompt and
    # the visual tokens whole.
    cut = proc(frames_sample(n=2), root, max_length=n - 2)
    assert torch.equal(cut["input_ids"], full["input_ids"][: n - 2])
    assert int((cut["labels"] != IGNORE_INDEX).sum()) == answer - 1
    with pytest.raises(ProcessorError, match="no answer tokens"):
        proc(frames_sample(n=2), root, max_length=n - answer - 1)
    last_visual = int(torch.nonzero(full["input_ids"] == proc.visual_token_id).max())
    with pytest.raises(ProcessorError, match="visual"):
        proc(frames_sample(n=2), root, max_length=last_visual)


def test_errors_are_one_line_processor_errors(proc, root):
    bad = [
        Sample(id="m", messages=video_sample().messages, media=[Media(type="video", path="missing.mp4")]),
        Sample(id="e", messages=video_sample().messages, media=[Media(type="video", path="../outside.mp4")]),
        Sample(id="b", messages=frames_sample().messages, media=[Media(type="frames", paths=["broken.png"])]),
        Sample(
            id="n",
            messages=[{"role": "user", "content": "<video>\nx"}, {"role": "assistant", "content": "y"}],
        ),
        Sample(
            id="v",
            messages=[{"role": "user", "content": "<|visual|> x"}, {"role": "assistant", "content": "y"}],
        ),
        Sample(id="u", messages=[{"role": "user", "content": "only a question"}]),
    ]
    for s in bad:
        with pytest.raises(ProcessorError) as e:
            proc(s, root)
        assert "\n" not in str(e.value) and str(e.value)


# ------------------------------------------------------------------------------------------- collate


def test_collate_pads_and_orders_frames(proc, root):
    feats = [proc(frames_sample(n=3), root), proc(video_sample(), root), proc(frames_sample(n=1), root)]
    b = collate(feats, proc.pad_token_id)
    lengths = [len(f["input_ids"]) for f in feats]
    assert b["input_ids"].shape == (3, max(lengths))
    for i, f in enumerate(feats):
        n = lengths[i]
        assert torch.equal(b["input_ids"][i, :n], f["input_ids"])
        assert bool((b["input_ids"][i, n:] == proc.pad_token_id).all())
        assert bool((b["labels"][i, n:] == IGNORE_INDEX).all())
        assert b["attention_mask"][i].tolist() == [1] * n + [0] * (max(lengths) - n)
    # Variable frame counts: pixel values in sample order, group sizes concatenated.
    assert b["pixel_values"].shape[0] == 3 + 6 + 1
    assert torch.equal(b["pixel_values"][3:9], feats[1]["pixel_values"])
    assert b["group_sizes"].tolist() == [1] * 10


def test_collate_packing_first_fit_and_mask(proc, root):
    feats = [proc(frames_sample(n=n), root) for n in (4, 1, 2, 1)]
    lengths = [len(f["input_ids"]) for f in feats]
    cap = lengths[0] + lengths[1] + 2
    b = collate(feats, proc.pad_token_id, pack=True, max_length=cap)
    # First fit in order: row 0 = [0, 1], row 1 = [2, 3].
    rows = [sorted(set(r.tolist()) - {-1}) for r in b["seq_index"]]
    assert rows == [[0, 1], [2, 3]]
    assert b["pixel_values"].shape[0] == 8
    # Frames of row 0 come first (samples 0 then 1), then row 1.
    assert torch.equal(b["pixel_values"][4], feats[1]["pixel_values"][0])
    mask = b["attention_mask"][0, 0]
    a0, a1 = lengths[0], lengths[1]
    assert bool(mask[:a0, :a0].equal(torch.ones(a0, a0, dtype=torch.bool).tril()))
    assert not bool(mask[a0 : a0 + a1, :a0].any())  # sample 1 cannot see sample 0
    assert bool(mask[a0 : a0 + a1, a0 : a0 + a1].equal(torch.ones(a1, a1, dtype=torch.bool).tril()))
    # Every row of the mask (padding included) attends somewhere: no NaN rows.
    assert bool(b["attention_mask"].any(-1).all())
    assert b["position_ids"][0, :a0].tolist() == list(range(a0))
    assert b["position_ids"][0, a0 : a0 + a1].tolist() == list(range(a1))
    with pytest.raises(ValueError, match="tokens"):
        collate(feats, proc.pad_token_id, pack=True, max_length=lengths[0] - 1)


# ----------------------------------------------------------------------------------------- tokenizer


def test_tiny_tokenizer_is_deterministic_and_round_trips(tmp_path):
    tok = build_tiny_tokenizer(tmp_path / "tok")
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|visual|>"]) == [
        0,
        1,
        2,
        3,
    ]
    assert len(tok) <= 1024
    # Another process with another hash seed trains the same BPE (the module alone: no torch import).
    import sparrow.model.tokenizer as tm

    code = f"import runpy; print(runpy.run_path({tm.__file__!r})['_tokenizer_json']())"
    env = {"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert json.loads(other) == json.loads(tm._tokenizer_json())
    assert json.loads(other)["model"]["vocab"] == json.loads(tok.backend_tokenizer.to_str())["model"]["vocab"]
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(str(tmp_path / "tok"), local_files_only=True)
    text = "The video lasts 00:37.\nclip from 00:00-00:04: <|visual|> How many squares? ünïcödé 日本"
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.decode(tok(text)["input_ids"]) == text
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    assert again.apply_chat_template(msgs, tokenize=False) == tok.apply_chat_template(msgs, tokenize=False)
    # Corpus words are single tokens; digits are split one by one.
    assert len(tok(" squares", add_special_tokens=False)["input_ids"]) == 1
    assert len(tok("2024", add_special_tokens=False)["input_ids"]) == 4


def test_clip_cache_reuses_decoded_clips_and_notices_rewritten_files(tmp_path):
    from sparrow.model.media import ClipCache

    write_video(tmp_path / "v.mp4", num_frames=30, fps=10, width=64, height=64)
    cache = ClipCache(8)
    p = Processor(VideoLLMConfig.from_yaml(TINY), clip_cache=cache)
    s = Sample(
        id="c",
        messages=[{"role": "user", "content": "<video>\nQ?"}, {"role": "assistant", "content": "A"}],
        media=[Media(type="video", path="v.mp4")],
    )
    first = p(s, tmp_path)
    second = p(s, tmp_path)
    assert (cache.misses, cache.hits) == (1, 1)
    assert torch.equal(first["pixel_values"], second["pixel_values"])
    # A rewritten file (new content, new mtime) is decoded again: 20 frames at 5 fps is a longer video.
    write_video(tmp_path / "v.mp4", num_frames=20, fps=5, width=64, height=64)
    third = p(s, tmp_path)
    assert cache.misses == 2
    assert third["pixel_values"].shape[0] != first["pixel_values"].shape[0]
    # Capacity 0 (the default for training) never caches.
    off = Processor(VideoLLMConfig.from_yaml(TINY))
    off(s, tmp_path)
    off(s, tmp_path)
    assert off.clip_cache.hits == 0
