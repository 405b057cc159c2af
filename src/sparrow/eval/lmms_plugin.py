"""A Sparrow checkpoint as an lmms-eval model, registered as ``sparrow``.

lmms-eval (0.7+) finds plugin models through the ``lmms_eval.models`` entry point, whose payload is a
``ModelManifest`` or a callable returning one — ``manifest`` below. It names two classes for the one id:

- ``SparrowLMM`` (chat, the default): ``generate_until`` on the task's ``doc_to_messages``;
- ``SparrowSimpleLMM`` (``--force_simple``): ``generate_until`` and ``loglikelihood`` on
  ``doc_to_visual`` + text, which multiple-choice (log-likelihood) tasks need — lmms-eval sends
  log-likelihood requests to simple models only.

Both load the checkpoint with ``sparrow.adapters.load_pretrained`` (Sparrow's own or HF-native) and sample frames themselves from the
video path lmms-eval hands over (``sparrow.video``, PyAV), following the checkpoint's sampling config or
model args overriding it (``strategy``, ``fps``, ``num_frames``, ``max_frames``, ``timestamps``, ...).
No torchvision anywhere: ``lmms-eval --model sparrow --model_args pretrained=CKPT,device=cpu``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from sparrow.adapters import load_pretrained
from sparrow.eval.conditions import parse_sampling_overrides
from sparrow.eval.scoring import score_batch
from sparrow.model.inference import generate, score_options
from sparrow.records import IMAGE_TOKEN, VIDEO_TOKEN, Media, Sample

try:  # the base class exists only where lmms-eval is installed (the separate .venv-eval)
    from lmms_eval.api.model import lmms as _LMMSBase
except ImportError:  # pragma: no cover - exercised in the core venv, where only the helpers are used
    _LMMSBase = object  # type: ignore[assignment,misc]

_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def manifest() -> Any:
    """The ``lmms_eval.models`` entry point: model id ``sparrow``, chat and simple implementations."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(
        model_id="sparrow",
        chat_class_path="sparrow.eval.lmms_plugin.SparrowLMM",
        simple_class_path="sparrow.eval.lmms_plugin.SparrowSimpleLMM",
    )


class _Visuals:
    """Turns lmms-eval visuals (paths, PIL images, video dicts) into Media with a common root.

    Media paths in a Sample are relative to a root and confined to it; lmms-eval hands absolute paths,
    so the root is their common directory. PIL images are written to a temporary folder first."""

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._n = 0

    def _save_image(self, img: Any) -> str:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sparrow-lmms-")
        self._n += 1
        path = os.path.join(self._tmp.name, f"img{self._n:06d}.png")
        img.convert("RGB").save(path)
        return path

    def to_items(self, visuals: Sequence[Any]) -> list[tuple[str, str, float | None, float | None]]:
        """(kind, absolute path, start, end) per visual; kind is "video" or "image"."""
        out = []
        for v in visuals or []:
            kind, start, end = None, None, None
            if isinstance(v, dict):
                kind = v.get("type")
                start, end = v.get("video_start"), v.get("video_end")
                url = v.get("url", v.get("path", v.get("video", v.get("image"))))
                if isinstance(
                    url, dict
                ):  # chat content {"type": "video", "url": {"path", "video_start", ...}}
                    start, end = url.get("video_start", start), url.get("video_end", end)
                    url = url.get("path", url.get("url"))
                v = url
            if hasattr(v, "convert") and hasattr(v, "size"):  # a PIL image
                out.append(("image", self._save_image(v), None, None))
                continue
            if not isinstance(v, (str, os.PathLike)):
                raise ValueError(f"unsupported visual input of type {type(v).__name__}")
            path = str(Path(v).resolve())
            if kind not in ("video", "image"):
                kind = "image" if Path(path).suffix.lower() in _IMAGE_EXTS else "video"
            out.append(
                (kind, path, None if start is None else float(start), None if end is None else float(end))
            )
        return out

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def build_sample(
    text: str, items: Sequence[tuple[str, str, float | None, float | None]], sample_id: str = "lmms"
) -> tuple[Sample, str]:
    """A one-turn user Sample: one placeholder line per visual, then the text; returns (sample, root)."""
    root = os.path.commonpath([os.path.dirname(p) for _, p, _, _ in items]) if items else os.getcwd()
    media, prefix = [], ""
    for kind, path, start, end in items:
        rel = os.path.relpath(path, root)
        if kind == "image":
            media.append(Media(type="image", path=rel))
            prefix += IMAGE_TOKEN + "\n"
        else:
            media.append(Media(type="video", path=rel, start=start, end=end))
            prefix += VIDEO_TOKEN + "\n"
    # A task's own placeholders would not match our media; the visuals define them.
    for tag in (VIDEO_TOKEN, IMAGE_TOKEN):
        text = text.replace(tag, "")
    sample = Sample(id=sample_id, messages=[{"role": "user", "content": prefix + text.strip()}], media=media)
    sample.validate()
    return sample, root


def messages_to_parts(messages: list[dict[str, Any]]) -> tuple[str, list[Any], str | None]:
    """lmms-eval chat messages -> (user text, visuals in order, system prompt)."""
    texts, visuals, system = [], [], None
    for m in messages:
        content = m.get("content")
        items = content if isinstance(content, list) else [{"type": "text", "text": str(content or "")}]
        if m.get("role") == "system":
            system = (
                " ".join(str(c.get("text", "")) for c in items if c.get("type") == "text").strip() or None
            )
            continue
        if m.get("role") != "user":
            continue  # earlier assistant turns (few-shot) are not part of Sparrow's one-turn format
        for c in items:
            if c.get("type") == "text":
                texts.append(str(c.get("text", "")))
            elif c.get("type") in ("video", "image"):
                visuals.append({"type": c["type"], "url": c.get("url")})
    return "\n".join(t for t in texts if t), visuals, system


def _cut(text: str, until: Sequence[str] | str | None) -> str:
    if isinstance(until, str):
        until = [until]
    for stop in until or []:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text


class _SparrowBase(_LMMSBase):  # type: ignore[misc,valid-type]
    def __init__(
        self,
        pretrained: str,
        device: str = "cpu",
        batch_size: int | str = 1,
        dtype: str | None = None,
        max_new_tokens: int = 16,
        **kwargs: Any,
    ) -> None:
        if _LMMSBase is not object:
            super().__init__()
        else:
            self.task_dict = {}
            self._rank, self._world_size = 0, 1
        self._device = torch.device(device)
        self.model, self.processor = load_pretrained(pretrained, device=self._device, dtype=dtype)
        self.tokenizer = self.processor.tokenizer
        known = {f.name for f in fields(self.processor.sampling)}
        unknown = sorted(k for k in kwargs if k not in known)
        if unknown:
            raise ValueError(f"unknown sparrow model_args {unknown}; sampling fields are {sorted(known)}")
        self.sampling = _typed_replace(self.processor.sampling, kwargs)
        self.batch_size_per_gpu = int(batch_size) if str(batch_size).isdigit() else 1
        self.max_new_tokens = int(max_new_tokens)
        self._visuals = _Visuals()

    @property
    def device(self) -> Any:
        return self._device

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    # -------------------------------------------------------------------------------- requests

    def _doc(self, task: str, split: str, doc_id: int) -> dict:
        return self.task_dict[task][split][doc_id]

    def _sample_from_request(self, args: tuple) -> tuple[Sample, str, dict]:
        """Both request layouts: chat ``(ctx, doc_to_messages, gen_kwargs, doc_id, task, split)`` and
        simple ``(ctx, gen_kwargs | continuation, doc_to_visual, doc_id, task, split)``."""
        ctx, second, third, doc_id, task, split = args[:6]
        if callable(second):  # chat
            messages = second(self._doc(task, split, doc_id))
            text, visuals, _system = messages_to_parts(messages)
            gen_kwargs = third if isinstance(third, dict) else {}
        else:
            visuals = third(self._doc(task, split, doc_id)) if callable(third) else []
            text = ctx
            gen_kwargs = second if isinstance(second, dict) else {}
        items = self._visuals.to_items(visuals)
        sample, root = build_sample(text, items, sample_id=f"{task}-{doc_id}")
        return sample, root, gen_kwargs

    def generate_until(self, requests: list[Any]) -> list[str]:
        out = []
        for req in requests:
            sample, root, gen_kwargs = self._sample_from_request(req.args)
            n = int(gen_kwargs.get("max_new_tokens", self.max_new_tokens) or self.max_new_tokens)
            text = generate(
                self.model, self.processor, sample, root, max_new_tokens=n, sampling=self.sampling
            )
            out.append(_cut(text, gen_kwargs.get("until")))
        return out

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        """Log-probability of each continuation as the reply, and whether greedy decoding produces it.

        Requests of one question share a prompt and are scored together. Single-token continuations (the
        option letters of a multiple-choice task) take one forward pass per question; longer ones use
        ``score_options`` and a greedy decode of as many tokens for ``is_greedy``."""
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(requests):
            ctx, _cont, _visuals, doc_id, task, split = req.args[:6]
            groups.setdefault((task, split, doc_id, ctx), []).append(i)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for idxs in groups.values():
            sample, root, _ = self._sample_from_request(requests[idxs[0]].args)
            # The continuation starts the reply: a leading target delimiter is not part of it.
            cands = [str(requests[i].args[1]).lstrip() or str(requests[i].args[1]) for i in idxs]
            ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in cands]
            if all(len(x) == 1 for x in ids):
                feats = self.processor(sample, root, sampling=self.sampling, generation=True)
                with torch.inference_mode():
                    (scores,), (greedy_id,) = score_batch(self.model, self.processor, [feats], [ids])
                greedy = [x[0] == greedy_id for x in ids]
            else:
                scores = score_options(
                    self.model, self.processor, sample, cands, root, sampling=self.sampling
                )
                n_tok = max(len(x) for x in ids)
                text = generate(
                    self.model, self.processor, sample, root, max_new_tokens=n_tok, sampling=self.sampling
                )
                greedy = [text.startswith(c) for c in cands]
            for i, s, g in zip(idxs, scores, greedy, strict=True):
                results[i] = (float(s), bool(g))
        return results  # type: ignore[return-value]

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError(
            "the sparrow model answers one turn; multi-round generation is not supported"
        )


def _typed_replace(base: Any, overrides: dict[str, Any]) -> Any:
    """Apply string model args over a SamplingConfig, typed like its defaults."""
    if not overrides:
        return base
    return parse_sampling_overrides(",".join(f"{k}={v}" for k, v in overrides.items()), base)


class SparrowLMM(_SparrowBase):
    """Chat model: lmms-eval hands ``doc_to_messages`` (the default for ``--model sparrow``)."""

    is_simple = False


class SparrowSimpleLMM(_SparrowBase):
    """Simple model (``--force_simple``): ``doc_to_visual`` + text; needed for log-likelihood tasks."""

    is_simple = True


__all__ = ["SparrowLMM", "SparrowSimpleLMM", "build_sample", "manifest", "messages_to_parts"]
