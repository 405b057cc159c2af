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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.chat.base import Backend, BackendError, Message, Request, Response, image_mime


class InputError(BackendError):
    """The request itself cannot be answered (unreadable media, a segment past the video's end, no user
    turn, a prompt over the model's length): the caller's to fix, not a fault of the model or server."""


class _Stopped(Exception):
    pass


class Detokenizer:
    """Turns the reply's tokens, as they come, into text deltas for ``on_text``: each token decodes all
    tokens so far and sends the new suffix. Text ending in U+FFFD is held back: a multi-byte character
    split over tokens decodes so until its last byte arrives. :meth:`finish` sends what is left and
    returns the whole text, which is always the deltas joined.

    Decoding every token so far again costs about 0.25 ms a token at 1,000 tokens (the tiny fast
    tokenizer), little next to a forward pass; decoding only a window would not always join to the
    same text."""

    def __init__(self, decode: Callable[[list[int]], str], on_text: Callable[[str], None] | None = None):
        self._decode = decode
        self._on_text = on_text
        self.tokens: list[int] = []
        self.text = ""  # sent so far

    def push(self, token: int) -> None:
        self.tokens.append(token)
        if self._on_text is not None:  # nobody listening: one decode at the end will do
            self._send(self._decode(self.tokens).rstrip("\ufffd"), final=False)

    def finish(self) -> str:
        self._send(self._decode(self.tokens), final=True)
        return self.text

    def _send(self, text: str, final: bool) -> None:
        if not text.startswith(self.text):
            # Byte-level BPE and SentencePiece decoders only ever append; a decoder that rewrites its
            # tail is waited out, and at the end what was sent stands and the rest follows it.
            if not final:
                return
            text = self.text + text[len(os.path.commonprefix([text, self.text])) :]
        delta, self.text = text[len(self.text) :], text
        if delta and self._on_text is not None:
            self._on_text(delta)


class _Watch:
    """A forward pre-hook that sees every token ``generate`` feeds the model (the prompt first, then each
    new token, which reaches ``text`` at once), so a caller can stop generation between two forward
    passes and keep the reply so far."""

    def __init__(self, should_stop: Callable[[], bool] | None, text: Detokenizer):
        self.should_stop = should_stop
        self.prompt_tokens = 0
        self.text = text

    def __call__(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        if self.prompt_tokens == 0:
            self.prompt_tokens = int(ids.shape[-1])  # text and visual tokens: what the model reads
        else:
            self.text.push(int(ids[0, -1]))
        if self.should_stop is not None and self.should_stop():
            raise _Stopped


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
        from sparrow.adapters import load_pretrained  # Sparrow's own checkpoints or HF-native ones
        from sparrow.model import ConfigError

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
        try:
            return self.answer(req)
        except Exception as e:  # a bad video or image is this request's problem, not the batch's
            return Response(error=str(e).splitlines()[0] if str(e) else type(e).__name__, calls=1)

    def answer(
        self,
        req: Request,
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Response:
        """The greedy reply to ``req``. ``should_stop`` is asked before every forward pass; when it says
        True generation ends there and the reply so far is returned. ``on_text`` (from this thread) gets
        each new piece of the reply's text as soon as its token is generated; the pieces join to the
        returned text (see :class:`Detokenizer`). ``prompt_tokens`` counts the prompt as the model
        reads it, visual tokens included. Raises :class:`InputError` for requests the caller must fix;
        any other exception is a fault of the model or machine."""
        from sparrow.model.inference import generate
        from sparrow.model.media import ProcessorError

        if req.decoding.temperature > 0:
            raise InputError("the sparrow backend decodes greedily: use temperature 0")
        t0 = time.perf_counter()
        tok = self._proc.tokenizer
        text = Detokenizer(lambda ids: tok.decode(ids, skip_special_tokens=True), on_text)
        watch = _Watch(should_stop, text)
        hook = self._model.register_forward_pre_hook(watch, with_kwargs=True)
        try:
            with tempfile.TemporaryDirectory(prefix="sparrow-request-") as tmp:
                sample = to_sample(req.messages, tmp)
                anchor = Path(tmp).resolve().anchor
                # The reply is the tokens the hook saw (every generated one is fed back), decoded as
                # streamed; generate's own decoding of the same tokens is not needed.
                generate(
                    self._model,
                    self._proc,
                    sample,
                    anchor,
                    max_new_tokens=req.decoding.max_tokens,
                    media_root=anchor,
                )
        except _Stopped:
            pass
        except (BackendError, ProcessorError) as e:
            raise InputError(str(e).splitlines()[0] if str(e) else type(e).__name__) from e
        finally:
            hook.remove()
        return Response(
            text=text.finish(),
            prompt_tokens=watch.prompt_tokens,
            completion_tokens=len(text.tokens),
            seconds=time.perf_counter() - t0,
            calls=1,
        )
