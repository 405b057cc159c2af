"""Video probing and frame sampling.

    from sparrow.video import probe, sample, Fps, Clips, Uniform
    clip = sample("a.mp4", Fps(2, max_frames=64), size=224)
    clip.frames      # uint8 (T, H, W, 3)
    clip.indices     # presentation-order positions of the frames
    clip.timestamps  # seconds from the first frame (0.0)

    strategy = strategy_for(sampling_config)           # the one place a config becomes a strategy
    chosen = select_stored(strategy, stored_timestamps)  # the same choice on stored frames

"The frame shown at time t" is the frame whose presentation interval [pts_i, pts_i+1) contains t,
which is right for constant and variable frame rates, 29.97 fps and streams that start after 0.
"""

from sparrow.video.errors import (
    BadSegment,
    EmptyVideo,
    NoVideoStream,
    VideoDecodeError,
    VideoError,
    VideoNotFound,
)
from sparrow.video.info import Clip, VideoInfo
from sparrow.video.sampling import (
    BACKENDS,
    SampleOptions,
    SampleStream,
    available_backends,
    open_sample,
    probe,
    resolve_backend,
    sample,
)
from sparrow.video.select import SamplingSettings, Selection, select_stored, strategy_for
from sparrow.video.sizing import target_size
from sparrow.video.strategies import Clips, Fps, Uniform
from sparrow.video.text import clip_prefix, format_time, frame_prefix, video_header
from sparrow.video.timeline import Timeline

__all__ = [
    "BACKENDS",
    "BadSegment",
    "Clip",
    "Clips",
    "EmptyVideo",
    "Fps",
    "NoVideoStream",
    "SampleOptions",
    "SampleStream",
    "SamplingSettings",
    "Selection",
    "Timeline",
    "Uniform",
    "VideoDecodeError",
    "VideoError",
    "VideoInfo",
    "VideoNotFound",
    "available_backends",
    "clip_prefix",
    "format_time",
    "frame_prefix",
    "open_sample",
    "probe",
    "resolve_backend",
    "sample",
    "select_stored",
    "strategy_for",
    "target_size",
    "video_header",
]
