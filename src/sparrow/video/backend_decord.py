"""The decord backend (``pip install decord``), for users who have it in their pipelines.

decord builds its own frame index; Sparrow checks that it counts the same frames at the same times as
the packet scan, then reads the planned indices with ``get_batch``. decord resizes inside its decoder
(``width``/``height``) but ignores rotation metadata, so Sparrow turns the frames upright itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparrow.video.backend_torchcodec import BackendMismatch
from sparrow.video.sizing import Size, target_size
from sparrow.video.timeline import Timeline


def available() -> bool:
    try:
        import decord  # noqa: F401
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
    import decord

    out_hw = target_size(size, *display_hw)
    kwargs: dict = {}
    if out_hw is not None:
        h, w = out_hw
        if rotation in (90, 270):  # decord sizes the stored picture
            h, w = w, h
        kwargs = {"width": w, "height": h}
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads, **kwargs)
        if len(vr) != len(tl):
            raise BackendMismatch(f"decord counts {len(vr)} frames, the stream has {len(tl)}")
        ts = vr.get_frame_timestamp([0, *wanted])[:, 0].astype(np.float64)
        batch = vr.get_batch(wanted).asnumpy()
    except BackendMismatch:
        raise
    except Exception as e:
        raise BackendMismatch(
            f"decord failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from e
    rel = ts[1:] - ts[0]
    # decord keeps float32 seconds: allow its rounding, far below any frame duration.
    bad = np.flatnonzero(np.abs(rel - tl.times[wanted]) > 2e-3 + 1e-6 * tl.times[wanted])
    if len(bad):
        j = int(bad[0])
        raise BackendMismatch(
            f"decord puts frame {wanted[j]} at {rel[j]:.4f} s, the stream at {tl.times[wanted[j]]:.4f} s"
        )
    out = {}
    for i, frame in zip(wanted, batch, strict=True):
        out[i] = np.rot90(frame, k=-(rotation // 90)) if rotation else frame
    return out
