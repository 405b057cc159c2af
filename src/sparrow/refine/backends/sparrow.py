"""A Sparrow video-LLM checkpoint that sees the clip itself (the flywheel's later rounds), in process,
through the model package's generation API (``sparrow.model.inference.generate``: greedy decoding).

Messages become one native sample: a message's video segment and images become ``<video>`` /
``<image>`` placeholders in front of its text, in that order. Images are written to a temporary folder
for the processor; video paths are used as given (the caller decides which paths are allowed, as
``sparrow serve`` does).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.refine.backends.base import Backend, BackendError, Message, Request, Response, image_mime


@dataclass(frozen=True)
class SparrowConfig:
    checkpoint: str
    device: str = "cpu"


def to_sample(messages: tuple[Message, ...], image_dir: str | os.PathLike, sample_id: str = "request") -> Any:
    """The native sample of a chat; images are saved under ``image_dir``. Media paths are absolute, so
    the processor must be called with a media root that contains them (``Path(p).anchor``)."""
    from sparrow.records import Media, Sample

    msgs, media, k = [], [], 0
    for m in messages:
        if m.role not in ("system", "user", "assistant"):
            raise BackendError(f"unknown role {m.role!r}")
        head = []
        if m.video is not None:
            path = str(Path(m.video.path).resolve())
            media.append(Media(type="video", path=path, start=m.video.start, end=m.video.end))
            head.append("<video>")
        for img in m.images:
            ext = "png" if image_mime(img) == "image/png" else "jpg"
            path = Path(image_dir) / f"image{k}.{ext}"
            path.write_bytes(img)
            k += 1
            media.append(Media(type="image", path=str(path.resolve())))
            head.append("<image>")
        if head and m.role != "user":
            raise BackendError("images and videos are read from user messages only")
        msgs.append({"role": m.role, "content": "\n".join([*head, m.text])})
    return Sample(id=sample_id, messages=msgs, media=media)


def checkpoint_identity(checkpoint: str | os.PathLike) -> str:
    """The checkpoint's folder name and a hash of its contents (the model in cache keys), so that two
    checkpoints both called ``final`` never share cached replies."""
    root = Path(checkpoint)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".json", ".safetensors", ".txt", ".model"):
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return f"{root.resolve().name}@{h.hexdigest()[:12]}"


class SparrowBackend(Backend):
    name = "sparrow"
    greedy_only = True

    def __init__(self, cfg: SparrowConfig):
        from sparrow.model import ConfigError, load_pretrained

        try:
            self._model, self._proc = load_pretrained(cfg.checkpoint, device=cfg.device)
        except (ConfigError, OSError) as e:
            raise BackendError(f"cannot load checkpoint {cfg.checkpoint}: {str(e).splitlines()[0]}") from e
        self.model = Path(cfg.checkpoint).resolve().name
        self._identity = checkpoint_identity(cfg.checkpoint)

    @property
    def identity(self) -> str:
        return self._identity

    def complete(self, requests: list[Request]) -> list[Response]:
        return [self.one(r) for r in requests]

    def one(self, req: Request) -> Response:
        from sparrow.model.inference import generate

        if req.sampling.temperature > 0:
            return Response(error="the sparrow backend decodes greedily: use temperature 0")
        t0 = time.perf_counter()
        tok = self._proc.tokenizer
        try:
            with tempfile.TemporaryDirectory(prefix="sparrow-request-") as tmp:
                sample = to_sample(req.messages, tmp)
                anchor = Path(tmp).resolve().anchor
                text = generate(
                    self._model,
                    self._proc,
                    sample,
                    anchor,
                    max_new_tokens=req.sampling.max_tokens,
                    media_root=anchor,
                )
        except Exception as e:  # a bad video or image is this request's problem, not the batch's
            return Response(error=str(e).splitlines()[0] if str(e) else type(e).__name__, calls=1)
        prompt = sum(len(tok(m.text, add_special_tokens=False)["input_ids"]) for m in req.messages)
        return Response(
            text=text,
            prompt_tokens=prompt,
            completion_tokens=len(tok(text, add_special_tokens=False)["input_ids"]),
            seconds=time.perf_counter() - t0,
            calls=1,
        )
