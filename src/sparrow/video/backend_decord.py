"""The decord backend (``pip install decord``), for users who have it in their pipelines.

decord builds its own frame index; Sparrow checks that it counts the same frames at the same times as
the packet scan, then reads the planned indices with ``get_batch``. decord resizes inside its decoder
(``width``/``height``, display orientation) and applies rotation metadata itself; some output sizes make
it fail, and then frames are decoded at full size and resized with swscale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparrow.video.backends import BackendMismatch, DecodeRequest, importable, mismatch_on_failure
from sparrow.video.sizing import target_size


def available() -> bool:
    return importable("decord")


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


def decode(req: DecodeRequest) -> dict[int, np.ndarray]:
    path, tl, wanted, threads = req.path, req.tl, req.wanted, req.threads
    out_hw = target_size(req.size, *req.display_hw)
    with mismatch_on_failure("decord"):
        try:
            vr, batch = _read(path, wanted, threads, out_hw)
        except Exception:
            if out_hw is None:
                raise
            vr, batch = _read(path, wanted, threads, None)  # decord rejects some sizes
            resize_after = True
        else:
            resize_after = False
        req.check_frame_count("decord", len(vr))
        ts = vr.get_frame_timestamp([0, *wanted])[:, 0].astype(np.float64)
    rel = ts[1:] - ts[0]
    # decord keeps float32 seconds: allow its rounding, far below any frame duration.
    bad = np.flatnonzero(np.abs(rel - tl.times[wanted]) > 2e-3 + 1e-6 * tl.times[wanted])
    if len(bad):
        j = int(bad[0])
        raise BackendMismatch(
            f"decord puts frame {wanted[j]} at {rel[j]:.4f} s, the stream at {tl.times[wanted[j]]:.4f} s"
        )
    # decord builds that do not apply rotation return the stored picture: turn it here.
    expect = req.display_hw if resize_after or out_hw is None else out_hw
    if req.rotation in (90, 270) and batch.shape[1:3] != tuple(expect):
        batch = np.stack([np.rot90(f, k=-(req.rotation // 90)) for f in batch])
    if resize_after:
        batch = _swscale(batch, out_hw)
    return dict(zip(wanted, batch, strict=True))
