"""Record -> model inputs: frames, prompt tokens with visual placeholders, labels.

For each media item the processor takes frames (``model.media``: the one selector of ``sparrow.video``
for videos and stored frame lists, every file of a synthetic frame list, one file for an image), splits
them into token groups (a frame or a clip each) and writes, where the record's ``<video>`` / ``<image>``
placeholder was:

    [video header "The video lasts 00:37.\\n"] [prefix] <visual> x n [\\n prefix <visual> x n] ...

with prefix ``clip from 00:00-00:04:`` (``apollo``), ``Frame from 00:04:`` (``frame``), ``Frame 3:``
for synthetic frames that have no time, or nothing (``none``). The conversation is rendered with the
tokenizer's chat template; labels are -100 everywhere except the assistant replies (and their
end-of-turn token). Batching is ``sparrow.model.collate``.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from sparrow.model.checkpoint import read_checkpoint_config
from sparrow.model.collate import IGNORE_INDEX
from sparrow.model.config import SamplingConfig, VideoLLMConfig
from sparrow.model.geometry import frame_size, tokens_per_group
from sparrow.model.media import ClipCache, MediaLoader, ProcessorError, VisualBlock
from sparrow.model.tokenizer import tokenizer_for
from sparrow.model.visual_terms import VisualTerms, token_offsets
from sparrow.records import IMAGE_TOKEN, VIDEO_TOKEN, Media, Sample

_PLACEHOLDER = re.compile(re.escape(VIDEO_TOKEN) + "|" + re.escape(IMAGE_TOKEN))

Part = tuple[str, Any, bool]  # (kind "text" | "visual", text or token count, labelled)


class Processor:
    """Turns records into model inputs for one model config (``Processor(cfg, tokenizer)``)."""

    def __init__(
        self,
        cfg: VideoLLMConfig,
        tokenizer: Any = None,
        decode_threads: int = 0,
        clip_cache: ClipCache | None = None,
        visual_terms: VisualTerms | None = None,
    ):
        self.cfg = cfg
        # Set: every output carries ``visual_mask``, the label tokens that name what the video shows
        # (``sparrow.model.visual_terms``), for the training loss split.
        self.visual_terms = visual_terms
        self.tokenizer = tokenizer if tokenizer is not None else tokenizer_for(cfg)
        self.visual_token_id = int(self.tokenizer.convert_tokens_to_ids(cfg.visual_token))
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.mean = np.asarray(cfg.vision.image_mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(cfg.vision.image_std, dtype=np.float32).reshape(1, 3, 1, 1)
        # Decoded clips by (file version, strategy, size, segment): evaluation asks several questions
        # of one video, and several models the same questions; pass one cache to share it.
        # Video decoder threads: 0 lets FFmpeg decide; use 1 in DataLoader workers (one process each).
        self.media = MediaLoader(
            cfg.connector.tokens_per == "clip",
            clip_cache if clip_cache is not None else ClipCache(0),
            decode_threads,
        )
        # (frame side, visual tokens per group) by sampling.image_size: reading the vision tower's
        # geometry may load its config from disk, so each size is worked out once.
        self._geometry = {cfg.sampling.image_size: (frame_size(cfg), tokens_per_group(cfg))}

    @classmethod
    def from_pretrained(cls, ckpt_dir: str | os.PathLike) -> Processor:
        return cls(read_checkpoint_config(ckpt_dir))

    @property
    def sampling(self) -> SamplingConfig:
        return self.cfg.sampling

    @property
    def clip_cache(self) -> ClipCache:
        return self.media.clip_cache

    @clip_cache.setter
    def clip_cache(self, cache: ClipCache) -> None:
        self.media.clip_cache = cache

    def geometry(self, sampling: SamplingConfig | None = None) -> tuple[int, int]:
        """(frame side in pixels, visual tokens per token group) under ``sampling``."""
        s = sampling or self.cfg.sampling
        if s.image_size not in self._geometry:
            cfg = replace(self.cfg, sampling=s)
            self._geometry[s.image_size] = (frame_size(cfg), tokens_per_group(cfg))
        return self._geometry[s.image_size]

    def tokens_per_group(self, sampling: SamplingConfig | None = None) -> int:
        return self.geometry(sampling)[1]

    # ------------------------------------------------------------------------------ one sample

    def __call__(
        self,
        sample: Sample,
        root: str | os.PathLike,
        sampling: SamplingConfig | None = None,
        max_length: int | None = None,
        media_root: str | os.PathLike | None = None,
        generation: bool = False,
    ) -> dict[str, Any]:
        """Model inputs of one record.

        Returns ``input_ids``, ``labels``, ``attention_mask`` (LongTensor (L,)), ``pixel_values``
        (FloatTensor (F, 3, S, S), normalised for the vision tower, or None), ``group_sizes``
        (LongTensor (G,): frames per token group), ``id`` and ``num_frames``; with ``visual_terms`` also
        ``visual_mask`` (BoolTensor (L,): labelled tokens that spell a visual term).
        ``generation=True`` renders the conversation up to its last user turn and opens an assistant
        turn (for ``generate`` / scoring); its labels are all -100.
        """
        s = sampling or self.cfg.sampling
        max_length = max_length if max_length is not None else self.cfg.max_length
        messages = list(sample.messages)
        if generation:
            last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
            if last_user < 0:
                raise ProcessorError(f"sample {sample.id!r}: no user turn to answer")
            messages = messages[: last_user + 1]
        text, spans = self._render(messages, generation, sample.id)
        parts, blocks = self._parts(sample, text, spans, root, s, media_root)
        if not generation and not spans:
            raise ProcessorError(f"sample {sample.id!r}: no assistant turn to learn from")
        terms = self.visual_terms
        terms = terms if terms is not None and not generation and terms.applies_to(sample) else None
        ids, labels, visual = self._tokenize(parts, terms)
        groups = [g for b in blocks for g in b.groups]
        ids, labels = self._fit(
            sample.id, ids, labels, max_length, generation, len(groups) * self.geometry(s)[1]
        )
        pixel_values = None
        if blocks:
            x = np.concatenate([b.frames for b in blocks]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            pixel_values = torch.from_numpy((x - self.mean) / self.std)
        out = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.ones(len(ids), dtype=torch.long),
            "pixel_values": pixel_values,
            "group_sizes": torch.tensor(groups, dtype=torch.long),
            "num_frames": int(sum(groups)),
            "id": sample.id,
        }
        if self.visual_terms is not None:
            out["visual_mask"] = torch.tensor(visual[: len(ids)], dtype=torch.bool)
        return out

    def _parts(
        self,
        sample: Sample,
        text: str,
        spans: list[tuple[int, int]],
        root: str | os.PathLike,
        s: SamplingConfig,
        media_root: Any,
    ) -> tuple[list[Part], list[VisualBlock]]:
        """The prompt cut into text pieces (labelled or not) and runs of visual tokens, with the media."""
        if self.cfg.visual_token in text:
            raise ProcessorError(
                f"sample {sample.id!r}: text contains the reserved token {self.cfg.visual_token!r}"
            )
        # Cut the text at assistant-span edges and placeholders; tokenize all text pieces in one call.
        cuts = sorted({0, len(text), *(a for a, _ in spans), *(b for _, b in spans)})
        matches = list(_PLACEHOLDER.finditer(text))
        if len(matches) != len(sample.media):
            raise ProcessorError(
                f"sample {sample.id!r}: {len(matches)} <video>/<image> placeholders for {len(sample.media)} media"
            )
        parts: list[Part] = []
        blocks: list[VisualBlock] = []
        pos = 0
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
            parts += self._text_parts(text, pos, m.start(), spans, cuts)
            block = self.load_media(media, root, s, media_root)
            parts += self._visual_parts(block, self.geometry(s)[1])
            blocks.append(block)
            pos = m.end()
        parts += self._text_parts(text, pos, len(text), spans, cuts)
        return parts, blocks

    @staticmethod
    def _visual_parts(block: VisualBlock, n_tokens: int) -> list[Part]:
        parts: list[Part] = []
        if block.header:
            parts.append(("text", block.header + "\n", False))
        for i, prefix in enumerate(block.prefixes):
            sep = "\n" if i and any(block.prefixes) else ""
            if sep or prefix:
                parts.append(("text", sep + (prefix + " " if prefix else ""), False))
            parts.append(("visual", n_tokens, False))
        return parts

    def _tokenize(
        self, parts: list[Part], terms: VisualTerms | None = None
    ) -> tuple[list[int], list[int], list[bool]]:
        """(ids, labels, visual): ``visual`` marks the labelled tokens that overlap a match of ``terms``."""
        texts = [p[1] for p in parts if p[0] == "text"]
        offsets = terms is not None and bool(getattr(self.tokenizer, "is_fast", False))
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=offsets) if texts else {}
        encoded = iter(enc["input_ids"]) if texts else iter(())
        spans = iter(enc["offset_mapping"]) if offsets and texts else None
        ids: list[int] = []
        labels: list[int] = []
        visual: list[bool] = []
        for kind, payload, labelled in parts:
            if kind == "text":
                piece = next(encoded)
                where = next(spans) if spans is not None else None
                ids += piece
                labels += piece if labelled else [IGNORE_INDEX] * len(piece)
                if labelled and terms is not None:
                    where = where if where is not None else token_offsets(self.tokenizer, payload, piece)
                    visual += terms.token_mask(payload, where)
                else:
                    visual += [False] * len(piece)
            else:
                ids += [self.visual_token_id] * payload
                labels += [IGNORE_INDEX] * payload
                visual += [False] * payload
        return ids, labels, visual

    def _fit(
        self,
        sid: str,
        ids: list[int],
        labels: list[int],
        max_length: int | None,
        generation: bool,
        n_visual: int,
    ) -> tuple[list[int], list[int]]:
        """Cut a too-long sample after its last visual token, or refuse when that is not possible."""
        if max_length is None or len(ids) <= max_length:
            return ids, labels
        last_visual = max((i for i, t in enumerate(ids) if t == self.visual_token_id), default=-1)
        if last_visual >= max_length or generation:
            raise ProcessorError(
                f"sample {sid!r}: needs {len(ids)} tokens ({n_visual} visual), over max_length {max_length}; "
                "cutting would split the visual tokens or the prompt"
            )
        ids, labels = ids[:max_length], labels[:max_length]
        if all(t == IGNORE_INDEX for t in labels):
            raise ProcessorError(f"sample {sid!r}: no answer tokens left within max_length {max_length}")
        return ids, labels

    def _render(
        self, messages: list[dict[str, str]], generation: bool, sid: str
    ) -> tuple[str, list[tuple[int, int]]]:
        """The chat-template text and the character spans of the assistant replies to learn.

        A reply's span is what rendering it adds after the generation prompt, trailing whitespace
        excluded: its content plus the end-of-turn token, exactly what the model must produce."""

        def render(msgs: list[dict[str, str]], gen: bool) -> str:
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

        text = render(messages, generation)
        spans: list[tuple[int, int]] = []
        if generation:
            return text, spans
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = render(messages[:i], True)
            upto = render(messages[: i + 1], False)
            if not (upto.startswith(prompt) and text.startswith(upto)):
                raise ProcessorError(f"sample {sid!r}: the chat template does not render turns as prefixes")
            reply = upto[len(prompt) :].rstrip()
            spans.append((len(prompt), len(prompt) + len(reply)))
        return text, spans

    @staticmethod
    def _text_parts(text: str, a: int, b: int, spans: list[tuple[int, int]], cuts: list[int]) -> list[Part]:
        out: list[Part] = []
        points = [a] + [c for c in cuts if a < c < b] + [b]
        for lo, hi in zip(points, points[1:], strict=False):
            if hi > lo:
                labelled = any(s <= lo and hi <= e for s, e in spans)
                out.append(("text", text[lo:hi], labelled))
        return out

    # ----------------------------------------------------------------------------------- media

    def load_media(
        self,
        media: Media,
        root: str | os.PathLike,
        s: SamplingConfig,
        media_root: str | os.PathLike | None = None,
    ) -> VisualBlock:
        """Frames, token groups and prompt text of one media item."""
        return self.media.load(media, root, s, self.geometry(s)[0], media_root)
