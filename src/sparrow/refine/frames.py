"""The image-language side (VidDF's stage 0): frames of a video described by an image-capable backend,
at their timestamps, for fusion into the refinement prompt (``prompts.frames_text``)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from sparrow.chat.base import Backend, Decoding, Message, Request
from sparrow.refine.prompts import FrameNote, PromptTemplate


@dataclass(frozen=True)
class FrameConfig:
    every: float = 4.0  # seconds between described frames
    size: int = 224  # shorter side of the frame sent to the backend
    max_frames: int = 64


def video_frames(path: str | os.PathLike, cfg: FrameConfig, threads: int = 1) -> list[tuple[float, bytes]]:
    """``(seconds, PNG bytes)`` of frames one ``cfg.every`` apart (raises ``sparrow.video.VideoError``
    for a missing or unreadable video)."""
    from PIL import Image

    from sparrow.video import Fps, sample

    clip = sample(path, Fps(1.0 / cfg.every, max_frames=cfg.max_frames), size=cfg.size, threads=threads)
    out = []
    for t, frame in zip(clip.timestamps, clip.frames, strict=True):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        out.append((float(t), buf.getvalue()))
    return out


def describe_frames(
    backend: Backend,
    template: PromptTemplate,
    frames: list[tuple[float, bytes]],
    decoding: Decoding,
    seed: int = 0,
) -> tuple[list[FrameNote], list[str]]:
    """One description per frame (a batch of requests); frames whose request failed are left out and
    their errors returned."""
    system = [Message("system", template.system)] if template.system else []
    user_text = template.user_text("")
    requests = [
        Request((*system, Message("user", user_text, images=(png,))), decoding, seed) for _, png in frames
    ]
    notes, errors = [], []
    for (t, _), resp in zip(frames, backend.complete(requests), strict=True):
        if resp.error:
            errors.append(f"frame at {t:.1f}s: {resp.error}")
        elif resp.text.strip():
            notes.append(FrameNote(t, " ".join(resp.text.split())))
    return notes, errors
