"""Record -> inputs of an HF-native model: Sparrow picks the frames, the family lays them out.

The conversation is rendered with the tokenizer's chat template (content as plain text, or as a
``[{"type": "text", ...}]`` list for templates that read lists), cut at the record's ``<video>`` /
``<image>`` placeholders and at the assistant replies; each media item's frames come from Sparrow's one
frame selector (``sparrow.model.media``: fps / uniform / clips, stored frames, synthetic frame lists)
and the family turns them into pixels and prompt tokens (``visual(block)``). Labels are -100 except the
assistant replies and their end-of-turn token, as for Sparrow's own model.

Outputs have the keys ``sparrow.model.collate`` batches: ``input_ids``, ``labels``, ``attention_mask``,
``pixel_values`` (the family's layout) and ``group_sizes`` (the family's per-item layout rows; see each
family), plus ``num_frames``, ``id`` and, with visual terms, ``visual_mask``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from sparrow.adapters.spec import HFModelSpec
from sparrow.model.collate import IGNORE_INDEX
from sparrow.model.config import SamplingConfig
from sparrow.model.media import ClipCache, MediaLoader, ProcessorError, VisualBlock
from sparrow.model.processor import _PLACEHOLDER, Processor
from sparrow.model.visual_terms import VisualTerms, token_offsets
from sparrow.records import IMAGE_TOKEN, VIDEO_TOKEN, Sample

PREPROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")


def norm_stats(
    path: str | None, mean: Sequence[float], std: Sequence[float]
) -> tuple[list[float], list[float]]:
    """The checkpoint's ``image_mean`` / ``image_std`` (its video processor's first, as the video path
    uses them), else the given defaults."""
    for name in PREPROCESSOR_FILES if path else ():
        f = Path(path) / name
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("image_mean") and d.get("image_std"):
            return [float(x) for x in d["image_mean"]], [float(x) for x in d["image_std"]]
    return list(mean), list(std)


# A prompt piece: ("text", str, labelled) or ("ids", list[int], False)
Piece = tuple[str, Any, bool]


class HFProcessor:
    """Base of the family processors; ``cfg`` is the model's ``HFModelSpec`` (its ``sampling`` is the
    default frame selection)."""

    family = ""
    # Normalisation when the checkpoint has no preprocessor config (the family's processor defaults).
    DEFAULT_MEAN: tuple[float, ...] = (0.5, 0.5, 0.5)
    DEFAULT_STD: tuple[float, ...] = (0.5, 0.5, 0.5)

    def __init__(self, cfg: HFModelSpec, tokenizer: Any, hf_config: Any, decode_threads: int = 0):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.hf_config = hf_config
        self.visual_terms: VisualTerms | None = None
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.media = MediaLoader(False, ClipCache(0), decode_threads)
        self.mean, self.std = norm_stats(cfg.path, self.DEFAULT_MEAN, self.DEFAULT_STD)
        template = str(getattr(tokenizer, "chat_template", "") or "")
        # Templates that iterate over content parts (LLaVA-OneVision's, SmolVLM's) need the list form.
        self.content_as_list = "is string" not in template and (
            "'type'" in template or "selectattr" in template
        )

    # ------------------------------------------------------------------------- what families define

    def frame_size(self, s: SamplingConfig) -> int:
        raise NotImplementedError

    def visual(self, block: VisualBlock, image: bool) -> tuple[list[Piece], torch.Tensor, list[int]]:
        """(prompt pieces, pixel tensor, layout row) of one media item."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ shared

    @property
    def sampling(self) -> SamplingConfig:
        return self.cfg.sampling

    @property
    def clip_cache(self) -> ClipCache:
        return self.media.clip_cache

    @clip_cache.setter
    def clip_cache(self, cache: ClipCache) -> None:
        self.media.clip_cache = cache

    def with_sampling(self, sampling: SamplingConfig) -> HFProcessor:
        proc = copy.copy(self)
        proc.cfg = replace(self.cfg, sampling=sampling)
        return proc

    def __call__(
        self,
        sample: Sample,
        root: str | os.PathLike,
        sampling: SamplingConfig | None = None,
        max_length: int | None = None,
        media_root: str | os.PathLike | None = None,
        generation: bool = False,
    ) -> dict[str, Any]:
        s = sampling or self.cfg.sampling
        max_length = max_length if max_length is not None else self.cfg.max_length
        messages = list(sample.messages)
        if generation:
            last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
            if last_user < 0:
                raise ProcessorError(f"sample {sample.id!r}: no user turn to answer")
            messages = messages[: last_user + 1]
        text, spans = self._render(messages, generation, sample.id)
        if not generation and not spans:
            raise ProcessorError(f"sample {sample.id!r}: no assistant turn to learn from")
        pieces, pixels, layout = self._pieces(sample, text, spans, root, s, media_root)
        terms = self.visual_terms
        terms = terms if terms is not None and not generation and terms.applies_to(sample) else None
        ids, labels, visual = self._tokenize(pieces, terms)
        if max_length is not None and len(ids) > max_length:
            raise ProcessorError(
                f"sample {sample.id!r}: needs {len(ids)} tokens, over max_length {max_length} "
                "(fewer frames: sampling.max_frames, or a larger seq_length)"
            )
        out = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.ones(len(ids), dtype=torch.long),
            "pixel_values": torch.cat(pixels) if pixels else None,
            "group_sizes": torch.tensor(layout, dtype=torch.long),
            "num_frames": self._frames_in(layout),
            "id": sample.id,
        }
        if self.visual_terms is not None:
            out["visual_mask"] = torch.tensor(visual, dtype=torch.bool)
        return out

    def _frames_in(self, layout: list[int]) -> int:
        return int(sum(layout))

    def _render_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.content_as_list:
            return messages
        return [{**m, "content": [{"type": "text", "text": m["content"]}]} for m in messages]

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return self.tokenizer.apply_chat_template(self._render_messages(messages), **kwargs)

    def _render(
        self, messages: list[dict[str, Any]], generation: bool, sid: str
    ) -> tuple[str, list[tuple[int, int]]]:
        """The chat-template text and the character spans of the assistant replies (content and end of
        turn, trailing whitespace excluded), as ``sparrow.model.processor`` finds them."""

        def render(msgs: list[dict[str, Any]], gen: bool) -> str:
            return self.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

        text = render(messages, generation)
        spans: list[tuple[int, int]] = []
        if generation:
            return text, spans
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt, upto = render(messages[:i], True), render(messages[: i + 1], False)
            if not (upto.startswith(prompt) and text.startswith(upto)):
                raise ProcessorError(f"sample {sid!r}: the chat template does not render turns as prefixes")
            reply = upto[len(prompt) :].rstrip()
            spans.append((len(prompt), len(prompt) + len(reply)))
        return text, spans

    def _pieces(
        self,
        sample: Sample,
        text: str,
        spans: list[tuple[int, int]],
        root: Any,
        s: SamplingConfig,
        media_root: Any,
    ) -> tuple[list[Piece], list[torch.Tensor], list[int]]:
        cuts = sorted({0, len(text), *(a for a, _ in spans), *(b for _, b in spans)})
        matches = list(_PLACEHOLDER.finditer(text))
        if len(matches) != len(sample.media):
            raise ProcessorError(
                f"sample {sample.id!r}: {len(matches)} <video>/<image> placeholders for {len(sample.media)} media"
            )
        pieces: list[Piece] = []
        pixels: list[torch.Tensor] = []
        layout: list[int] = []
        pos = 0
        size = self.frame_size(s)
        for m, media in zip(matches, sample.media, strict=True):
            if any(a <= m.start() < b for a, b in spans):
                raise ProcessorError(
                    f"sample {sample.id!r}: a media placeholder sits inside an assistant reply"
                )
            expected = IMAGE_TOKEN if media.type == "image" else VIDEO_TOKEN
            if m.group() != expected:
                raise ProcessorError(
                    f"sample {sample.id!r}: placeholder {m.group()} does not match {media.type} media"
                )
            pieces += Processor._text_parts(text, pos, m.start(), spans, cuts)
            block = self.media.load(media, root, s, size, media_root)
            item_pieces, pix, row = self.visual(block, media.type == "image")
            pieces += item_pieces
            pixels.append(pix)
            layout += row
            pos = m.end()
        pieces += Processor._text_parts(text, pos, len(text), spans, cuts)
        return pieces, pixels, layout

    def _tokenize(
        self, pieces: list[Piece], terms: VisualTerms | None
    ) -> tuple[list[int], list[int], list[bool]]:
        texts = [p[1] for p in pieces if p[0] == "text"]
        enc = iter(self.tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else iter(())
        ids: list[int] = []
        labels: list[int] = []
        visual: list[bool] = []
        for kind, payload, labelled in pieces:
            piece = next(enc) if kind == "text" else list(payload)
            ids += piece
            labels += piece if labelled else [IGNORE_INDEX] * len(piece)
            if labelled and terms is not None:
                visual += terms.token_mask(payload, token_offsets(self.tokenizer, payload, piece))
            else:
                visual += [False] * len(piece)
        return ids, labels, visual

    def token_ids(self, *tokens: str) -> list[int]:
        return [int(self.tokenizer.convert_tokens_to_ids(t)) for t in tokens]
