"""The torchcodec backend (``pip install sparrow-vllm[torchcodec]``).

The timeline and the plan come from Sparrow's packet scan, so indices mean the same on every backend;
torchcodec decodes the frames shown at those exact timestamps, and the timestamps it returns are checked
against the plan. Resizing uses torchcodec's in-decoder ``Resize`` when the installed version has it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparrow.video.sizing import Size, target_size
from sparrow.video.timeline import Timeline


class BackendMismatch(RuntimeError):
    """A backend returned frames other than the ones asked for (or failed to decode)."""


def available() -> bool:
    try:
        import torchcodec.decoders  # noqa: F401  (also fails when FFmpeg's libraries are missing)
    except Exception:
        return False
    return True


def decode(
    path: Path,
    tl: Timeline,
    wanted: list[int],
    size: Size,
    rotation: int,
    display_hw: tuple[int, int],
    threads: int = 0,
) -> dict[int, np.ndarray]:
    import inspect

    import torch
    from torchcodec.decoders import VideoDecoder, VideoStreamMetadata

    params = inspect.signature(VideoDecoder.__init__).parameters
    fields = getattr(VideoStreamMetadata, "__dataclass_fields__", {})
    rotates = "rotation" in fields  # torchcodec >= 0.11 turns frames upright itself
    out_hw = target_size(size, *display_hw)
    kwargs: dict = {"dimension_order": "NHWC", "num_ffmpeg_threads": threads, "seek_mode": "approximate"}
    if "device" in params:
        kwargs["device"] = "cpu"
    native_resize = out_hw is not None and "transforms" in params
    if native_resize:
        from torchcodec.transforms import Resize

        h, w = out_hw
        if not rotates and rotation in (90, 270):
            h, w = w, h
        kwargs["transforms"] = [Resize(size=(h, w))]
    try:
        dec = VideoDecoder(str(path), **kwargs)
        # Ask for the frame shown just after each wanted frame's start: exact for any frame rate.
        tb = tl.time_base
        starts = [float(int(tl.pts[i]) * tb) for i in wanted]
        ends = [float(int(tl.pts[i + 1]) * tb) if i + 1 < len(tl) else float(tl.end_pts * tb) for i in wanted]
        seconds = [s + min(1e-4, 0.25 * (e - s)) for s, e in zip(starts, ends, strict=True)]
        batch = dec.get_frames_played_at(seconds)
    except Exception as e:
        raise BackendMismatch(
            f"torchcodec failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from e
    got = batch.pts_seconds.tolist()
    for i, s, e, g in zip(wanted, starts, ends, got, strict=True):
        if not (s - 1e-4 <= g < e - 1e-6 or abs(g - s) < 1e-4):
            raise BackendMismatch(f"torchcodec returned the frame at {g:.4f} s for frame {i} at {s:.4f} s")
    data = batch.data
    if out_hw is not None and not native_resize:
        x = data.permute(0, 3, 1, 2).float()
        h, w = out_hw
        if not rotates and rotation in (90, 270):
            h, w = w, h
        x = torch.nn.functional.interpolate(
            x, size=(h, w), mode="bilinear", antialias=True, align_corners=False
        )
        data = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    arr = data.contiguous().numpy()
    out = {}
    for i, frame in zip(wanted, arr, strict=True):
        if rotation and not rotates:
            frame = np.rot90(frame, k=-(rotation // 90))
        out[i] = frame
    return out
