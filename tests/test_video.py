"""sparrow.video: every returned frame must be the frame its index and timestamp claim.

Test videos come from tests/media.py: each frame shows its own index in large blocks, so a test reads
the pixels back (``read_index``) instead of trusting the reported index. Ground truth (which frame is
shown at time t) is computed here with exact fractions from the timestamps the video was written with.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from media import (
    VideoSpec,
    make_frame,
    read_index,
    truncate,
    write_audio_only,
    write_empty_video,
    write_video,
)

from sparrow.video import (
    BadSegment,
    Clips,
    EmptyVideo,
    Fps,
    NoVideoStream,
    Uniform,
    VideoDecodeError,
    VideoError,
    VideoNotFound,
    available_backends,
    backend_pyav,
    clip_prefix,
    frame_prefix,
    probe,
    resolve_backend,
    sample,
    video_header,
)

# Irregular timestamps (ms) for the variable-frame-rate video: bursts, gaps, a 1 ms step.
VFR_PTS = [
    0,
    40,
    50,
    90,
    300,
    310,
    320,
    700,
    701,
    760,
    1000,
    1040,
    1500,
    1510,
    1520,
    1900,
    2300,
    2340,
    2380,
    2400,
]

# name -> (file name, write_video keyword arguments)
VIDEOS = {
    "h264_30": ("h264_30.mp4", dict(num_frames=120, fps=30, gop=24, bframes=2)),
    "h264_2997": ("h264_2997.mp4", dict(num_frames=120, fps=Fraction(30000, 1001), gop=30, bframes=3)),
    "vp9_25": ("vp9_25.webm", dict(num_frames=100, codec="vp9", fps=25, gop=20)),
    "mpeg4_30": ("mpeg4_30.mp4", dict(num_frames=120, codec="mpeg4", fps=30, gop=24, bframes=2)),
    "mpeg4_avi": ("mpeg4.avi", dict(num_frames=90, codec="mpeg4", fps=30, gop=30, bframes=0)),
    "h264_vfr": ("h264_vfr.mp4", dict(num_frames=len(VFR_PTS), pts=VFR_PTS, gop=8, bframes=2)),
    "h264_start": ("h264_start.mp4", dict(num_frames=90, fps=30, start_pts=45, gop=20)),
    "h264_ts": ("h264.ts", dict(num_frames=120, fps=30, gop=24)),
    "h264_mkv_start": ("h264_start.mkv", dict(num_frames=75, fps=25, start_pts=30, gop=15)),
    "h264_opengop": ("h264_opengop.mp4", dict(num_frames=90, fps=30, gop=12, bframes=3, open_gop=True)),
    "hevc_mkv": ("hevc.mkv", dict(num_frames=75, codec="hevc", fps=25, gop=12, bframes=3, open_gop=True)),
    "rot90": ("rot90.mp4", dict(num_frames=60, fps=30, rotation=90, width=64, height=48, gop=12)),
    "rot270": ("rot270.mp4", dict(num_frames=60, fps=30, rotation=270, width=64, height=48, gop=12)),
    "rot180": ("rot180.mp4", dict(num_frames=60, fps=30, rotation=180, width=64, height=48, gop=12)),
}
CFR = [k for k in VIDEOS if k != "h264_vfr"]


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    """Lazily written test videos, shared by the whole session."""
    root = tmp_path_factory.mktemp("videos")
    cache: dict[str, VideoSpec] = {}

    def get(name: str) -> VideoSpec:
        if name not in cache:
            fname, kw = VIDEOS[name]
            cache[name] = write_video(root / fname, **kw)
        return cache[name]

    return get


# -- ground truth, exact ---------------------------------------------------------------------------


def gt_fps(spec: VideoSpec, f: float, s: Fraction, e: Fraction) -> list[int]:
    f = Fraction(f)
    out: list[int] = []
    k = 0
    while s + k / f < e:
        i = spec.frame_at(s + k / f)
        if not out or out[-1] != i:
            out.append(i)
        k += 1
    return out


def gt_uniform(spec: VideoSpec, n: int, s: Fraction, e: Fraction) -> list[int]:
    return [spec.frame_at(s + (j + Fraction(1, 2)) * (e - s) / n) for j in range(n)]


def gt_clips(spec: VideoSpec, f: float, m: int, max_clips: int, s: Fraction, e: Fraction):
    f = Fraction(f)
    clip = m / f
    needed = max(1, math.ceil((e - s) / clip))
    if needed <= max_clips:
        starts = [s + c * clip for c in range(needed)]
    else:
        part = (e - s) / max_clips
        starts = [s + (c + Fraction(1, 2)) * part - clip / 2 for c in range(max_clips)]
    last = max(i for i, t in enumerate(spec.exact_times) if t < e)
    idx = [spec.frame_at(a + j / f) if a + j / f < e else last for a in starts for j in range(m)]
    return idx, [(float(a), float(min(a + clip, e))) for a in starts]


def assert_frames_match(clip, spec: VideoSpec) -> None:
    """Pixels show the reported indices; timestamps are those indices' presentation times."""
    assert clip.frames.dtype == np.uint8 and clip.frames.ndim == 4 and clip.frames.shape[3] == 3
    assert len(clip.frames) == len(clip.indices) == len(clip.timestamps)
    assert [read_index(f) for f in clip.frames] == clip.indices
    assert clip.timestamps == pytest.approx([spec.times[i] for i in clip.indices], abs=1e-9)


def flat(spans):
    return [x for span in spans for x in span]


def segment_of(clip, spec, start, end):
    if spec.meta["fps"] is not None:  # constant rate: the exact duration, checked against the reported
        assert clip.info.duration == pytest.approx(float(spec.exact_duration), abs=1e-9)
        dur = spec.exact_duration
    else:  # variable rate: the last frame lasts what its packet says
        dur = Fraction(clip.info.duration)
    # Fraction("0.3") is 3/10; Fraction(0.3) would be the float just below it.
    s = Fraction(str(start)) if start is not None else Fraction(0)
    e = min(Fraction(str(end)), dur) if end is not None else dur
    return s, e


# -- every strategy on every kind of video ---------------------------------------------------------

STRATEGIES = [
    (Fps(2), None, None),
    (Fps(7.5), 0.5, 2.2),
    (Uniform(5), None, None),
    (Uniform(4), 1.0, None),
    (Clips(6, 3, 2), None, None),
    (Clips(10, 2, 25), 0.3, 1.9),
]


@pytest.mark.parametrize("name", list(VIDEOS))
def test_strategies_return_the_frames_they_report(videos, name):
    spec = videos(name)
    for strategy, start, end in STRATEGIES:
        clip = sample(spec.path, strategy, start=start, end=end, backend="pyav")
        assert_frames_match(clip, spec)
        s, e = segment_of(clip, spec, start, end)
        if isinstance(strategy, Fps):
            assert clip.indices == gt_fps(spec, strategy.fps, s, e), strategy
            assert clip.clip_spans is None
        elif isinstance(strategy, Uniform):
            assert clip.indices == gt_uniform(spec, strategy.n, s, e), strategy
        else:
            idx, spans = gt_clips(spec, strategy.fps, strategy.frames_per_clip, strategy.max_clips, s, e)
            assert clip.indices == idx, strategy
            assert flat(clip.clip_spans) == pytest.approx(flat(spans))
            assert clip.frames_per_clip == strategy.frames_per_clip
        assert not clip.partial


@pytest.mark.parametrize("name", CFR)
def test_info_after_sampling_is_exact(videos, name):
    spec = videos(name)
    clip = sample(spec.path, Uniform(2))
    info = clip.info
    assert info.num_frames == spec.num_frames and info.num_frames_exact
    assert info.duration == pytest.approx(spec.duration, abs=1e-9)
    assert (info.height, info.width) == (spec.height, spec.width)
    assert info.rotation == spec.rotation
    assert not info.variable_fps
    assert info.fps == pytest.approx(float(spec.meta["fps"]), rel=1e-6)


# -- hand-computed cases -----------------------------------------------------------------------------


def test_2997_fps_uses_timestamps_not_rounded_rate(videos):
    spec = videos("h264_2997")  # 120 frames of 1001/30000 s
    clip = sample(spec.path, Fps(1))
    # t = 1 s falls in frame 29 (0.9676 s .. 1.0010 s); rounding t * 29.97 would say 30.
    assert clip.indices == [0, 29, 59, 89, 119]  # the video lasts 4.004 s
    assert_frames_match(clip, spec)
    assert clip.timestamps[1] == pytest.approx(29 * 1001 / 30000)


def test_variable_frame_rate(videos):
    spec = videos("h264_vfr")
    clip = sample(spec.path, Fps(1), end=2.5)
    # frames shown at 0, 1, 2 s: pts 0, 1000 (index 10), 1900 (index 15)
    assert clip.indices == [0, 10, 15]
    assert clip.timestamps == pytest.approx([0.0, 1.0, 1.9])
    assert_frames_match(clip, spec)
    clip = sample(spec.path, Fps(4), end=1.0)  # 0, .25, .5, .75 s -> pts 0, 90, 320, 701 ms
    assert clip.indices == [spec.frame_at(Fraction(k, 4)) for k in range(4)] == [0, 3, 6, 8]
    assert_frames_match(clip, spec)
    info = probe(spec.path, exact=True)
    assert info.variable_fps and info.num_frames == len(VFR_PTS) and info.num_frames_exact


def test_nonzero_start_time_is_reported_separately(videos):
    for name, start in (("h264_start", 1.5), ("h264_mkv_start", 1.2)):
        spec = videos(name)
        clip = sample(spec.path, Fps(1))
        assert clip.timestamps[0] == 0.0 and clip.indices[0] == 0
        assert clip.info.start_time == pytest.approx(start)
        assert probe(spec.path).start_time == pytest.approx(start)
        assert clip.indices == ([0, 30, 60] if name == "h264_start" else [0, 25, 50])
        assert_frames_match(clip, spec)


def test_fps_thinning_rounding_and_minimum(videos):
    spec = videos("h264_30")  # 120 frames, 4 s
    clip = sample(spec.path, Fps(30, max_frames=8))
    assert clip.indices == [int((j + 0.5) * 120 / 8) for j in range(8)] == [7, 22, 37, 52, 67, 82, 97, 112]
    assert_frames_match(clip, spec)
    # fps 2 -> 8 frames (0, 15, ..., 105); multiple of 3 -> 6, evenly thinned from the 8
    clip = sample(spec.path, Fps(2, multiple_of=3))
    full = list(range(0, 120, 15))
    assert clip.indices == [full[int((j + 0.5) * 8 / 6)] for j in range(6)] == [0, 30, 45, 60, 90, 105]
    # fps 0.5 -> 2 frames (0 s, 2 s) < min_frames 4 -> 4 uniform: middles of quarters of 4 s
    clip = sample(spec.path, Fps(0.5, min_frames=4))
    assert clip.indices == [15, 45, 75, 105]
    assert_frames_match(clip, spec)
    # a segment with fewer frames than the multiple: the last frame repeats
    clip = sample(spec.path, Fps(1, multiple_of=4), start=0.0, end=0.05)
    assert clip.indices == [0, 0, 0, 0]
    assert_frames_match(clip, spec)
    # Fps above the frame rate takes each frame once
    clip = sample(spec.path, Fps(100), start=1.0, end=1.2)
    assert clip.indices == [30, 31, 32, 33, 34, 35]


def test_clips_spread_keep_in_clip_fps(videos):
    spec = videos("h264_30")  # 4 s
    clip = sample(spec.path, Clips(fps=10, frames_per_clip=4, max_clips=2))
    # 10 clips of 0.4 s needed; 2 kept, centred in the two halves: starts 0.8 s and 2.8 s
    assert flat(clip.clip_spans) == pytest.approx([0.8, 1.2, 2.8, 3.2])
    assert clip.indices == [24, 27, 30, 33, 84, 87, 90, 93]
    assert np.diff(clip.timestamps[:4]) == pytest.approx([0.1] * 3)
    assert_frames_match(clip, spec)
    # enough clips allowed: they tile the video from its start; the last one is cut at the end
    clip = sample(spec.path, Clips(fps=1, frames_per_clip=3, max_clips=5))
    assert flat(clip.clip_spans) == pytest.approx([0.0, 3.0, 3.0, 4.0])
    assert clip.indices == [0, 30, 60, 90, 119, 119]
    assert_frames_match(clip, spec)


def test_start_end_limits_and_errors(videos):
    spec = videos("h264_30")
    clip = sample(spec.path, Fps(2), start=3.0, end=100.0)  # end clamps to the video's end
    assert clip.indices == [90, 105]
    clip = sample(spec.path, Uniform(3), start=1.0, end=2.0)
    assert clip.indices == [35, 45, 55]
    assert_frames_match(clip, spec)
    for start, end in ((-1.0, None), (4.0, None), (2.0, 2.0), (2.0, 1.0), (float("nan"), None)):
        with pytest.raises(BadSegment) as err:
            sample(spec.path, Fps(1), start=start, end=end)
        assert str(spec.path) in str(err.value)
        assert isinstance(err.value, VideoError) and isinstance(err.value, ValueError)


def test_resize_modes(videos):
    spec = videos("h264_30")  # 64 x 64
    assert sample(spec.path, Uniform(2), size=None).frames.shape[1:] == (64, 64, 3)
    assert sample(spec.path, Uniform(2), size=32).frames.shape[1:] == (32, 32, 3)
    clip = sample(spec.path, Uniform(3), size=(24, 40))
    assert clip.frames.shape[1:] == (24, 40, 3)
    assert_frames_match(clip, spec)
    wide = videos("rot90")  # displayed 48 high x 64 wide
    clip = sample(wide.path, Uniform(3), size=24)  # shorter side 24 -> 24 x 32
    assert clip.frames.shape[1:] == (24, 32, 3)
    assert_frames_match(clip, wide)
    with pytest.raises(ValueError):
        sample(spec.path, Uniform(2), size=0)
    with pytest.raises(ValueError):
        sample(spec.path, Uniform(2), size=(10,))


@pytest.mark.parametrize("name", ["rot90", "rot270", "rot180"])
def test_rotation_is_applied(videos, name):
    spec = videos(name)
    info = probe(spec.path)
    assert info.rotation == spec.rotation
    assert (info.width, info.height) == (64, 48)  # display size; stored 48 x 64 for 90/270
    clip = sample(spec.path, Fps(10), size=(24, 32))
    assert clip.frames.shape[1:] == (24, 32, 3)
    assert_frames_match(clip, spec)
    # without applying the rotation the frames would not read (the markers catch it)
    with pytest.raises(ValueError):
        read_index(np.ascontiguousarray(np.rot90(clip.frames[0], k=spec.rotation // 90)))


def test_probe(videos):
    spec = videos("h264_2997")
    info = probe(spec.path)
    assert info.fps == pytest.approx(30000 / 1001)
    assert info.codec == "h264" and info.num_frames == 120 and info.num_frames_exact
    assert info.duration == pytest.approx(120 * 1001 / 30000)
    assert info.to_dict()["path"] == str(spec.path)
    webm = videos("vp9_25")
    info = probe(webm.path)
    assert info.codec == "vp9" and not info.num_frames_exact  # Matroska has no frame count
    assert info.num_frames == 100  # estimated from duration x rate
    exact = probe(webm.path, exact=True)
    assert exact.num_frames == 100 and exact.num_frames_exact and exact.duration == pytest.approx(4.0)
    assert probe(videos("mpeg4_30").path).codec == "mpeg4"


def test_only_returned_frames_are_converted(videos, monkeypatch):
    spec = videos("h264_30")
    calls = []
    orig = backend_pyav.PyAVReader._convert

    def counting(self, frame, size):
        calls.append(frame.pts)
        return orig(self, frame, size)

    monkeypatch.setattr(backend_pyav.PyAVReader, "_convert", counting)
    clip = sample(spec.path, Clips(fps=30, frames_per_clip=2, max_clips=1), backend="pyav")  # frames 59, 60
    assert len(calls) == len(set(clip.indices))
    calls.clear()
    clip = sample(spec.path, Uniform(6), start=0.0, end=0.1, backend="pyav")  # 3 frames, repeats
    assert len(clip.indices) == 6 and len(calls) == len(set(clip.indices)) == 3


def test_seek_fallback_and_threads(videos):
    """MPEG-TS seeks land a GOP late; the decoder notices and seeks further back."""
    spec = videos("h264_ts")
    for threads in (1, 0):
        clip = sample(spec.path, Uniform(4), threads=threads)
        assert clip.indices == [15, 45, 75, 105]
        assert_frames_match(clip, spec)
    a = sample(spec.path, Fps(3), size=16)
    b = sample(spec.path, Fps(3), size=16)
    assert np.array_equal(a.frames, b.frames) and a.indices == b.indices


# -- errors ---------------------------------------------------------------------------------------------


def test_error_cases(tmp_path, videos):
    cases = []
    cases.append((tmp_path / "missing.mp4", VideoNotFound, "no such file"))
    cases.append((tmp_path, VideoNotFound, "not a file"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases.append((tmp_path / "empty.mp4", VideoDecodeError, "empty"))
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    cases.append((tmp_path / "text.mp4", VideoDecodeError, "not a readable video"))
    cases.append((write_audio_only(tmp_path / "sound.wav"), NoVideoStream, "no video stream"))
    cases.append((write_empty_video(tmp_path / "noframes.mkv"), EmptyVideo, "no frames"))
    spec = write_video(tmp_path / "cut.mp4", 60, fps=25, gop=10)
    cases.append((truncate(spec.path, 0.7), VideoDecodeError, "not a readable video"))  # index at the end
    for path, kind, words in cases:
        for call in (lambda p: sample(p, Fps(1)), lambda p: probe(p)):
            with pytest.raises(kind) as err:
                call(path)
            assert isinstance(err.value, VideoError)
            msg = str(err.value)
            assert msg.startswith(str(path)) and words in msg and "\n" not in msg, msg
    with pytest.raises(TypeError):
        sample(videos("h264_30").path, "fps")  # type: ignore[arg-type]
    for bad in (
        lambda: Fps(0),
        lambda: Fps(1, max_frames=3, multiple_of=4),
        lambda: Uniform(0),
        lambda: Clips(1, 0),
    ):
        with pytest.raises(ValueError):
            bad()


@pytest.mark.parametrize("suffix,faststart", [(".mkv", False), (".mp4", True)])
def test_truncated_file(tmp_path, suffix, faststart):
    spec = write_video(tmp_path / f"v{suffix}", 100, fps=25, gop=10, faststart=faststart)
    full = sample(spec.path, Fps(5))
    truncate(spec.path, 0.6)
    with pytest.raises(VideoDecodeError, match="truncated"):
        sample(spec.path, Fps(5))
    clip = sample(spec.path, Fps(5), allow_partial=True)
    assert clip.partial
    assert 0 < len(clip.indices) < len(full.indices)
    assert clip.indices == full.indices[: len(clip.indices)]
    assert_frames_match(clip, spec)
    clips = sample(spec.path, Clips(5, 4, 25), allow_partial=True)
    assert clips.partial and len(clips.indices) == 4 * len(clips.clip_spans)
    assert_frames_match(clips, spec)


# -- backends ---------------------------------------------------------------------------------------


def test_backend_selection():
    names = available_backends()
    assert "pyav" in names
    assert resolve_backend("auto") == names[0]
    with pytest.raises(ValueError):
        resolve_backend("ffmpeg-cli")
    for name in ("torchcodec", "decord"):
        if name not in names:
            with pytest.raises(ValueError, match="not installed"):
                resolve_backend(name)


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
@pytest.mark.parametrize("name", ["h264_30", "h264_vfr", "h264_start", "rot90", "vp9_25"])
def test_other_backends_agree_with_pyav(videos, backend, name):
    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed")
    spec = videos(name)
    for strategy, size in ((Fps(3), None), (Uniform(5), 24), (Clips(8, 2, 3), (20, 28))):
        ref = sample(spec.path, strategy, size=size, backend="pyav")
        got = sample(spec.path, strategy, size=size, backend=backend)
        assert got.indices == ref.indices and got.timestamps == ref.timestamps
        assert got.frames.shape == ref.frames.shape
        assert_frames_match(got, spec)


# -- prompt text -------------------------------------------------------------------------------------


def test_timestamp_text():
    assert clip_prefix(4.0, 8.0) == "clip from 00:04-00:08:"
    assert clip_prefix(59.999, 7.9999999) == "clip from 00:59-00:08:"
    assert frame_prefix(65.3) == "Frame from 01:05:"
    assert frame_prefix(0) == "Frame from 00:00:"
    assert video_header(83.4) == "The video lasts 01:23."
    assert video_header(3725.6) == "The video lasts 1:02:06."


def test_media_code_is_strict():
    f = make_frame(1234, 48, 64)
    assert read_index(f) == 1234
    for bad in (np.rot90(f), f[:, ::-1], f[..., ::-1], np.zeros_like(f)):
        with pytest.raises(ValueError):
            read_index(np.ascontiguousarray(bad))


def test_scan_is_cached_per_file_version(tmp_path, monkeypatch):
    spec = write_video(tmp_path / "c.mp4", 30, fps=30)
    calls = []
    orig = backend_pyav.PyAVReader._scan

    def counting(self):
        calls.append(self.path)
        return orig(self)

    monkeypatch.setattr(backend_pyav.PyAVReader, "_scan", counting)
    a = sample(spec.path, Fps(10))
    b = sample(spec.path, Uniform(3))
    assert len(calls) == 1 and a.info.num_frames == b.info.num_frames == 30
    spec = write_video(tmp_path / "c.mp4", 45, fps=30)  # the file changes: scanned again
    c = sample(spec.path, Fps(10))
    assert len(calls) == 2 and c.info.num_frames == 45
    assert_frames_match(c, spec)
