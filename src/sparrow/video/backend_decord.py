"""The decord backend (``pip install decord``), for users who have it in their pipelines.

decord builds its own frame index; Sparrow checks that it counts the same frames at the same times as
the packet scan, then reads the planned indices with ``get_batch``. decord resizes inside its decoder
(``width``/``height``, display orientation) and applies rotation metadata itself; some output sizes make
it fail, and then frames are decoded at full size and resized with swscale.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from sparrow.video.backend_torchcodec import BackendMismatch
from sparrow.video.sizing import Size, target_size
from sparrow.video.timeline import Timeline


@functools.cache
def available() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:
        return False
    return True


def _read(path: Path, wanted: list[int], threads: int, hw: tuple[int, int] | None):
    import decord

    kwargs = {} if hw is None else {"height": hw[0], "width": hw[1]}
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads, **kwargs)
    return vr, vr.get_batch(wanted).asnumpy()


def _swscale(frames: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import av

    out = [
        av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        .reformat(width=hw[1], height=hw[0], format="rgb24")
        .to_ndarray()
        for f in frames
    ]
    return np.stack(out)


def decode(
    path: Path,
    tl: Timeline,
    wanted: list[int],
    size: Size,
    rotation: int,
    display_hw: tuple[int, int],
    threads: int = 0,
) -> dict[int, np.ndarray]:
    out_hw = target_size(size, *display_hw)
    try:
        try:
            vr, batch = _read(path, wanted, threads, out_hw)
        except Exception:
            if out_hw is None:
                raise
            vr, batch = _read(path, wanted, threads, None)  # decord rejects some sizes
            resize_after = True
        else:
            resize_after = False
        if len(vr) != len(tl):
            raise BackendMismatch(f"decord counts {len(vr)} frames, the stream has {len(tl)}")
        ts = vr.get_frame_timestamp([0, *wanted])[:, 0].astype(np.float64)
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
    # decord builds that do not apply rotation return the stored picture: turn it here.
    expect = display_hw if resize_after or out_hw is None else out_hw
    if rotation in (90, 270) and batch.shape[1:3] != tuple(expect):
        batch = np.stack([np.rot90(f, k=-(rotation // 90)) for f in batch])
    if resize_after:
        batch = _swscale(batch, out_hw)
    return dict(zip(wanted, batch, strict=True))
