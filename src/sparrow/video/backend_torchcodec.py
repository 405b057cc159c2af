"""The torchcodec backend (``pip install sparrow-vllm[torchcodec]``).

The timeline and the plan come from Sparrow's packet scan, so indices mean the same on every backend.
torchcodec gets that scan as its frame mapping (``custom_frame_mappings``, torchcodec >= 0.12; older
versions scan in exact mode), decodes the planned indices with ``get_frames_at``, and the timestamps it
returns are checked against the plan. Resizing uses torchcodec's in-decoder ``Resize`` when the installed
version has it; torchcodec >= 0.11 applies rotation itself.
"""

from __future__ import annotations

import numpy as np

from sparrow.video.backends import BackendMismatch, DecodeRequest, importable, mismatch_on_failure
from sparrow.video.sizing import target_size
from sparrow.video.timeline import Timeline


def available() -> bool:
    return importable("torchcodec.decoders")  # also False when FFmpeg's libraries are missing


def _frame_mappings(tl: Timeline) -> str:
    import json

    ends = [*tl.pts[1:].tolist(), tl.end_pts]
    keys = set(tl.key_indices.tolist())
    frames = [
        {"pts": int(p), "duration": int(e - p), "key_frame": int(i in keys)}
        for i, (p, e) in enumerate(zip(tl.pts.tolist(), ends, strict=True))
    ]
    return json.dumps({"frames": frames})


def decode(req: DecodeRequest) -> dict[int, np.ndarray]:
    import inspect

    import torch
    from torchcodec.decoders import VideoDecoder, VideoStreamMetadata

    params = inspect.signature(VideoDecoder.__init__).parameters
    fields = getattr(VideoStreamMetadata, "__dataclass_fields__", {})
    rotates = "rotation" in fields  # torchcodec >= 0.11 turns frames upright itself
    tl, wanted, rotation = req.tl, req.wanted, req.rotation
    out_hw = target_size(req.size, *req.display_hw)
    kwargs: dict = {"dimension_order": "NHWC", "num_ffmpeg_threads": req.threads}
    if "device" in params:
        kwargs["device"] = "cpu"
    if "custom_frame_mappings" in params:
        # Hand torchcodec Sparrow's own scan: no second scan, and index i means the same frame.
        kwargs["custom_frame_mappings"] = _frame_mappings(tl)
    else:
        kwargs["seek_mode"] = "exact"  # its own scan; sorted pts, like Sparrow's
    native_resize = out_hw is not None and "transforms" in params
    if native_resize:
        from torchcodec.transforms import Resize

        h, w = out_hw
        if not rotates and rotation in (90, 270):
            h, w = w, h
        kwargs["transforms"] = [Resize(size=(h, w))]
    tb = tl.time_base
    first = float(int(tl.pts[0]) * tb)
    with mismatch_on_failure("torchcodec"):
        dec = VideoDecoder(str(req.path), **kwargs)
        req.check_frame_count("torchcodec", len(dec))
        batch = dec.get_frames_at(wanted)
    got = batch.pts_seconds.tolist()
    for i, g in zip(wanted, got, strict=True):
        want = float(int(tl.pts[i]) * tb)
        if abs((g - first) - (want - first)) > 1e-4:
            raise BackendMismatch(f"torchcodec returned the frame at {g:.4f} s for frame {i} at {want:.4f} s")
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
