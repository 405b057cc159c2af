"""The one frame selector: a video and its ``sparrow frames`` output give the processor the same inputs,
and stored frames follow the video's rules, their ``end`` deciding the last frame."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from media import read_index, write_video
from processor_samples import decoded_indices, sampling, user_text, video_sample

from sparrow.records import Media, Sample

# The shared fixtures, found by pytest where they are imported.
from processor_samples import clip_proc_fixture, proc_fixture  # noqa: F401  # isort: skip


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------- one selector: video == stored frames

# Variable-rate streams. The first one's steps (ms) have a median of 40 ms; the second one's are
# irregular enough that the file's last frame lasts nothing like the median step: stored frames get it
# right only from the manifest's duration, carried as the frames media's ``end``.
VFR_STEPS = [40, 10, 70, 40, 25, 55, 40, 40, 5, 75, 40, 30, 50, 40] * 3
VFR_ODD_STEPS = [90, 10, 130, 15, 60, 20, 110, 35] * 4
SELECTOR_VIDEOS = {
    "cfr30.mp4": dict(num_frames=75, fps=30, gop=15, bframes=2),
    "ntsc2997.mp4": dict(num_frames=75, fps=Fraction(30000, 1001), gop=15, bframes=2),
    "vfr.mkv": dict(num_frames=len(VFR_STEPS) + 1, pts=[0, *itertools.accumulate(VFR_STEPS)], gop=12),
    "vfr-odd.mp4": dict(
        num_frames=len(VFR_ODD_STEPS) + 1, pts=[0, *itertools.accumulate(VFR_ODD_STEPS)], gop=12
    ),
}
SELECTOR_SAMPLINGS = {
    "fps": sampling(fps=3.0, max_frames=6, timestamps="frame"),
    "fps-all": sampling(fps=10.0, max_frames=None),
    "uniform": sampling(strategy="uniform", num_frames=5),
    "clips": sampling(strategy="clips", fps=4.0, frames_per_clip=2, max_clips=3),
    "clips-tiled": sampling(strategy="clips", fps=2.0, frames_per_clip=2, max_clips=25),
}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Test videos and their ``sparrow frames`` output at a rate that keeps every frame (PNG, lossless,
    at the model's frame size), and at 2 fps (the usual sparse extraction)."""
    from sparrow.video.extract import ExtractConfig, extract

    d = tmp_path_factory.mktemp("selector")
    for name, kw in SELECTOR_VIDEOS.items():
        write_video(d / name, width=64, height=64, **kw)
    paths = [d / name for name in SELECTOR_VIDEOS]
    out = {}
    for rate in (1000.0, 2.0):
        folder = d / f"frames-{rate:g}"
        extract(paths, folder, ExtractConfig(fps=rate, size=(64, 64), image_format="png"))
        rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
        out[rate] = (folder, {Path(r["video"]).name: r for r in rows})
    return d, out


def _pair(video: str, row: dict) -> tuple[Sample, Sample]:
    messages = video_sample().messages
    return (
        Sample(id="v", messages=messages, media=[Media(type="video", path=video)]),
        Sample(
            id="f",
            messages=messages,
            media=[
                Media(type="frames", paths=row["frames"], timestamps=row["timestamps"], end=row["duration"])
            ],
        ),
    )


@pytest.mark.parametrize("kind", list(SELECTOR_SAMPLINGS))
@pytest.mark.parametrize("video", list(SELECTOR_VIDEOS))
def test_stored_frames_and_the_video_give_the_same_inputs(extracted, proc, clip_proc, video, kind):
    videos_dir, by_rate = extracted
    folder, rows = by_rate[1000.0]
    row = rows[video]
    s = SELECTOR_SAMPLINGS[kind]
    p = clip_proc if kind.startswith("clips") else proc
    from_video, from_frames = _pair(video, row)
    vb = p.load_media(from_video.media[0], videos_dir, s)
    fb = p.load_media(from_frames.media[0], folder, s)
    assert len(row["indices"]) == len(row["frames"]) == SELECTOR_VIDEOS[video]["num_frames"]  # every frame
    assert [row["indices"][i] for i in fb.indices] == vb.indices
    assert [read_index(f) for f in vb.frames] == vb.indices
    assert np.array_equal(fb.frames, vb.frames)
    fv, ff = p(from_video, videos_dir, sampling=s), p(from_frames, folder, sampling=s)
    assert user_text(p, ff) == user_text(p, fv)
    for key in ("input_ids", "labels", "pixel_values", "group_sizes"):
        assert torch.equal(ff[key], fv[key]), key


@pytest.mark.parametrize("video", list(SELECTOR_VIDEOS))
def test_sparse_extraction_at_the_sampling_rate_gives_the_video_frames(extracted, proc, video):
    videos_dir, by_rate = extracted
    folder, rows = by_rate[2.0]
    s = sampling(fps=2.0, max_frames=None)
    from_video, from_frames = _pair(video, rows[video])
    fv, ff = proc(from_video, videos_dir, sampling=s), proc(from_frames, folder, sampling=s)
    assert decoded_indices(ff) == decoded_indices(fv) == rows[video]["indices"]
    assert torch.equal(ff["input_ids"], fv["input_ids"]) and torch.equal(
        ff["pixel_values"], fv["pixel_values"]
    )


def test_stored_frames_follow_the_video_rules():
    """The issue's case: 11 frames at 2.5 fps once gave [0, 3, 5, 8, 10] (fps 1) and [0, 3, 7, 10]
    (uniform 4) from stored frames; the video's rules give [0, 2, 5, 7, 10] and [1, 4, 6, 9]."""
    from sparrow.video import Fps, Uniform, select_stored

    ts = [0.4 * i for i in range(11)]
    assert select_stored(Fps(1), ts).indices == [0, 2, 5, 7, 10]
    assert select_stored(Uniform(4), ts).indices == [1, 4, 6, 9]
    chosen = select_stored(Fps(1), ts)
    assert chosen.duration == pytest.approx(4.4) and chosen.timestamps == pytest.approx(
        [0, 0.8, 2.0, 2.8, 4.0]
    )
    with pytest.raises(ValueError, match="increasing"):
        select_stored(Fps(1), [0.0, 0.5, 0.5])


def test_stored_frames_end_decides_the_last_frame():
    """Without ``end`` the last stored frame lasts the median step; with it, what the video says."""
    from sparrow.records import RecordError
    from sparrow.video import Uniform, select_stored

    times = [0.0, 0.1, 0.2, 0.3]
    assert select_stored(Uniform(4), times).duration == pytest.approx(0.4)
    assert select_stored(Uniform(4), times, end=1.5).duration == pytest.approx(1.5)
    # Uniform picks the frame shown at each quarter of the duration: a long last frame takes the later picks.
    assert select_stored(Uniform(4), times, end=1.5).indices == [1, 3, 3, 3]
    m = Media.from_dict({"type": "frames", "paths": ["a", "b"], "timestamps": [0, 1], "end": 2.5})
    assert m.end == 2.5 and Media.from_dict(m.to_dict()) == m
    plain = Media(type="frames", paths=["a"], timestamps=[0.0])
    assert "end" not in plain.to_dict()  # records without it keep their exact bytes
    with pytest.raises(RecordError, match="after the last one"):
        Media.from_dict({"type": "frames", "paths": ["a", "b"], "timestamps": [0, 1], "end": 1})
