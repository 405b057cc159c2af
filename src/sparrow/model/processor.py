"""Record -> model inputs: frames, prompt tokens with visual placeholders, labels; and batching.

For each media item the processor samples frames (``sparrow.video.sample`` for videos, the listed files
for frame sequences, one file for an image), splits them into token groups (a frame or a clip each) and
writes, where the record's ``<video>`` / ``<image>`` placeholder was:

    [video header "The video lasts 00:37.\\n"] [prefix] <visual> x n [\\n prefix <visual> x n] ...

with prefix ``clip from 00:00-00:04:`` (``apollo``), ``Frame from 00:04:`` (``frame``), ``Frame 3:``
for synthetic frames that have no time, or nothing (``none``). The conversation is rendered with the
tokenizer's chat template; labels are -100 everywhere except the assistant replies (and their
end-of-turn token). ``collate`` pads a list of samples into a batch, or packs several samples per row
with restarting position ids and a block-diagonal causal mask.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparrow.model.config import SamplingConfig, VideoLLMConfig, frame_size, tokens_per_group
from sparrow.model.tokenizer import load_tokenizer
from sparrow.records import IMAGE_TOKEN, VIDEO_TOKEN, Media, RecordError, Sample, resolve_media_path

IGNORE_INDEX = -100
_PLACEHOLDER = re.compile(re.escape(VIDEO_TOKEN) + "|" + re.escape(IMAGE_TOKEN))


class ClipCache:
    """A small LRU of decoded clips. ``capacity`` 0 disables it (training: every sample is seen once per
    epoch, so caching would only hold memory)."""

    def __init__(self, capacity: int = 256):
        from collections import OrderedDict

        self.capacity = capacity
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(path: Path, strategy: Any, size: int, start: float | None, end: float | None) -> tuple | None:
        """None for a file that cannot be stat'ed: not cached, the decoder then reports why."""
        try:
            st = path.stat()  # the file's version: a rewritten video is decoded again
        except OSError:
            return None
        return (str(path), st.st_mtime_ns, st.st_size, repr(strategy), size, start, end)

    def get(self, key: tuple | None) -> Any:
        if not self.capacity or key is None:
            return None
        clip = self._items.get(key)
        if clip is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return clip

    def put(self, key: tuple | None, clip: Any) -> None:
        if not self.capacity or key is None:
            return
        self._items[key] = clip
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


class ProcessorError(ValueError):
    """A sample cannot be turned into model inputs; the message is a one-line reason."""


@dataclass
class VisualBlock:
    """The frames of one media item and how they are introduced in the prompt."""

    frames: np.ndarray  # (F, S, S, 3) uint8
    groups: list[int]  # frames per token group, in order
    prefixes: list[str]  # text before each group ("" = none)
    header: str = ""  # e.g. "The video lasts 00:37."
    timestamps: list[float] | None = None


def mmss(t: float) -> str:
    t = max(0, int(t))
    return f"{t // 60:02d}:{t % 60:02d}"


class Processor:
    """Turns records into model inputs for one model config (``Processor(cfg, tokenizer)``)."""

    def __init__(
        self,
        cfg: VideoLLMConfig,
        tokenizer: Any = None,
        decode_threads: int = 0,
        clip_cache: ClipCache | None = None,
    ):
        self.cfg = cfg
        # Decoded clips by (file version, strategy, size, segment): evaluation asks several questions
        # of one video, and several models the same questions; pass one cache to share it.
        self.clip_cache = clip_cache if clip_cache is not None else ClipCache(0)
        # Video decoder threads: 0 lets FFmpeg decide; use 1 in DataLoader workers (one process each).
        self.decode_threads = decode_threads
        self.tokenizer = (
            tokenizer
            if tokenizer is not None
            else load_tokenizer(cfg.tokenizer, cfg.lm.path, cfg.visual_token)
        )
        self.visual_token_id = int(self.tokenizer.convert_tokens_to_ids(cfg.visual_token))
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.mean = np.asarray(cfg.vision.image_mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(cfg.vision.image_std, dtype=np.float32).reshape(1, 3, 1, 1)

    @classmethod
    def from_pretrained(cls, ckpt_dir: str | os.PathLike) -> Processor:
        from sparrow.model.videollm import read_checkpoint_config

        return cls(read_checkpoint_config(ckpt_dir))

    @property
    def sampling(self) -> SamplingConfig:
        return self.cfg.sampling

    def tokens_per_group(self, sampling: SamplingConfig | None = None) -> int:
        cfg = self.cfg if sampling is None else replace(self.cfg, sampling=sampling)
        return tokens_per_group(cfg)

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
        (LongTensor (G,): frames per token group), ``id`` and ``num_frames``.
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
        parts: list[tuple[str, Any, bool]] = []  # (kind, payload, labelled); kind "text" | "visual"
        n_tokens = self.tokens_per_group(s)
        frames_all: list[np.ndarray] = []
        groups_all: list[int] = []
        pos = 0
        events = sorted([(m.start(), m.end(), k) for k, m in enumerate(matches)])
        for start, end, k in events:
            if any(a <= start < b for a, b in spans):
                raise ProcessorError(
                    f"sample {sample.id!r}: a media placeholder sits inside an assistant reply"
                )
            parts += self._text_parts(text, pos, start, spans, cuts)
            media = sample.media[k]
            expected = IMAGE_TOKEN if media.type == "image" else VIDEO_TOKEN
            if text[start:end] != expected:
                raise ProcessorError(
                    f"sample {sample.id!r}: placeholder {text[start:end]} does not match {media.type} media"
                )
            block = self.load_media(media, root, s, media_root)
            if block.header:
                parts.append(("text", block.header + "\n", False))
            for i, prefix in enumerate(block.prefixes):
                sep = "\n" if i and any(block.prefixes) else ""
                if sep or prefix:
                    parts.append(("text", sep + (prefix + " " if prefix else ""), False))
                parts.append(("visual", n_tokens, False))
            frames_all.append(block.frames)
            groups_all += block.groups
            pos = end
        parts += self._text_parts(text, pos, len(text), spans, cuts)

        texts = [p[1] for p in parts if p[0] == "text"]
        encoded = iter(self.tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else iter(())
        ids: list[int] = []
        labels: list[int] = []
        for kind, payload, labelled in parts:
            if kind == "text":
                piece = next(encoded)
                ids += piece
                labels += piece if labelled else [IGNORE_INDEX] * len(piece)
            else:
                ids += [self.visual_token_id] * payload
                labels += [IGNORE_INDEX] * payload

        if not generation and not spans:
            raise ProcessorError(f"sample {sample.id!r}: no assistant turn to learn from")
        if max_length is not None and len(ids) > max_length:
            last_visual = max((i for i, t in enumerate(ids) if t == self.visual_token_id), default=-1)
            if last_visual >= max_length or generation:
                raise ProcessorError(
                    f"sample {sample.id!r}: needs {len(ids)} tokens ({len(groups_all) * n_tokens} visual), "
                    f"over max_length {max_length}; cutting would split the visual tokens or the prompt"
                )
            ids, labels = ids[:max_length], labels[:max_length]
            if all(t == IGNORE_INDEX for t in labels):
                raise ProcessorError(
                    f"sample {sample.id!r}: no answer tokens left within max_length {max_length}"
                )

        pixel_values = None
        if frames_all:
            frames = np.concatenate(frames_all)
            x = frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            pixel_values = torch.from_numpy((x - self.mean) / self.std)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.ones(len(ids), dtype=torch.long),
            "pixel_values": pixel_values,
            "group_sizes": torch.tensor(groups_all, dtype=torch.long),
            "num_frames": int(sum(groups_all)),
            "id": sample.id,
        }

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
    def _text_parts(
        text: str, a: int, b: int, spans: list[tuple[int, int]], cuts: list[int]
    ) -> list[tuple[str, Any, bool]]:
        out = []
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
        size = s.image_size or frame_size(self.cfg)
        try:
            if media.type == "image":
                frame = _load_image(resolve_media_path(root, media.path or "", media_root), size)
                return VisualBlock(frames=frame[None], groups=[1], prefixes=[""])
            if media.type == "frames":
                return self._load_frames(media, root, s, size, media_root)
            return self._load_video(media, root, s, size, media_root)
        except RecordError as e:
            raise ProcessorError(str(e)) from e

    def _groups(self, n: int, s: SamplingConfig) -> list[int]:
        if self.cfg.connector.tokens_per == "frame":
            return [1] * n
        k = s.frames_per_clip
        return [min(k, n - i) for i in range(0, n, k)]

    def _load_video(
        self, media: Media, root: str | os.PathLike, s: SamplingConfig, size: int, media_root: Any
    ) -> VisualBlock:
        from sparrow import video as V

        path = resolve_media_path(root, media.path or "", media_root)
        per_clip = self.cfg.connector.tokens_per == "clip"
        if s.strategy == "uniform":
            strategy: Any = V.Uniform(s.num_frames)
        elif s.strategy == "clips":
            strategy = V.Clips(s.fps, frames_per_clip=s.frames_per_clip, max_clips=s.max_clips)
        else:
            strategy = V.Fps(
                s.fps,
                min_frames=s.min_frames,
                max_frames=s.max_frames,
                multiple_of=s.frames_per_clip if per_clip else 1,
            )
        key = self.clip_cache.key(path, strategy, size, media.start, media.end)
        clip = self.clip_cache.get(key)
        if clip is None:
            try:
                clip = V.sample(
                    path,
                    strategy,
                    size=(size, size),
                    start=media.start,
                    end=media.end,
                    threads=self.decode_threads,
                )
            except V.VideoError as e:
                raise ProcessorError(str(e)) from e
            self.clip_cache.put(key, clip)
        frames = np.asarray(clip.frames)
        if frames.ndim != 4 or not len(frames):
            raise ProcessorError(f"{media.path}: no frames sampled")
        # Times in the prompt are relative to the start of what the model sees (the segment).
        offset = media.start or 0.0
        ts = [t - offset for t in clip.timestamps]
        end = clip.info.duration if media.end is None else min(media.end, clip.info.duration)
        duration = max(end - offset, ts[-1] if ts else 0.0)
        groups = self._groups(len(frames), s)
        spans: list[tuple[float, float]] | None = None
        if per_clip and clip.clip_spans and len(clip.clip_spans) == len(groups):
            spans = [(a - offset, b - offset) for a, b in clip.clip_spans]
        prefixes = self._timed_prefixes(ts, groups, duration, s, spans)
        header = V.video_header(duration) if s.header else ""
        return VisualBlock(frames=frames, groups=groups, prefixes=prefixes, header=header, timestamps=ts)

    def _load_frames(
        self, media: Media, root: str | os.PathLike, s: SamplingConfig, size: int, media_root: Any
    ) -> VisualBlock:
        paths = list(media.paths or [])
        if media.timestamps is None:
            # Synthetic pseudo-video: every frame carries text, so none is dropped (as Sparrow does).
            if s.max_frames is not None and len(paths) > s.max_frames:
                raise ProcessorError(
                    f"synthetic sample has {len(paths)} frames, over max_frames {s.max_frames}"
                )
            keep = list(range(len(paths)))
        else:
            keep = _select_timed(media.timestamps, s)
        frames = np.stack([_load_image(resolve_media_path(root, paths[i], media_root), size) for i in keep])
        groups = self._groups(len(keep), s)
        if media.timestamps is None:
            prefixes = self._ordinal_prefixes(groups, s)
            return VisualBlock(frames=frames, groups=groups, prefixes=prefixes)
        t0 = media.timestamps[0]
        ts = [media.timestamps[i] - t0 for i in keep]
        all_ts = [t - t0 for t in media.timestamps]
        step = float(np.median(np.diff(all_ts))) if len(all_ts) > 1 else 0.0
        duration = all_ts[-1] + step
        prefixes = self._timed_prefixes(ts, groups, duration, s, None)
        from sparrow import video as V

        header = V.video_header(duration) if s.header else ""
        return VisualBlock(frames=frames, groups=groups, prefixes=prefixes, header=header, timestamps=ts)

    @staticmethod
    def _timed_prefixes(
        ts: list[float],
        groups: list[int],
        duration: float,
        s: SamplingConfig,
        spans: list[tuple[float, float]] | None,
    ) -> list[str]:
        if s.timestamps == "none":
            return [""] * len(groups)
        from sparrow import video as V

        firsts = np.cumsum([0] + groups[:-1]).tolist()
        out = []
        for g, first in enumerate(firsts):
            if s.timestamps == "frame":
                out.append(V.frame_prefix(ts[first]))
                continue
            if spans is not None:
                a, b = spans[g]
            else:
                # A group covers the time from its first frame to the next group's first frame.
                a = ts[first]
                b = ts[firsts[g + 1]] if g + 1 < len(firsts) else max(duration, a)
            out.append(V.clip_prefix(a, b))
        return out

    @staticmethod
    def _ordinal_prefixes(groups: list[int], s: SamplingConfig) -> list[str]:
        if s.timestamps == "none":
            return [""] * len(groups)
        out, first = [], 1
        for n in groups:
            out.append(f"Frame {first}:" if n == 1 else f"Frames {first}-{first + n - 1}:")
            first += n
        return out

    # ------------------------------------------------------------------------------- batching

    def collate(
        self, feats: list[dict[str, Any]], pack: bool = False, max_length: int | None = None
    ) -> dict[str, Any]:
        """Batch processed samples.

        Unpacked: one sample per row, right-padded; ``attention_mask`` (B, L) of 0/1.
        Packed: samples go first-fit into rows of ``max_length`` tokens (default: the longest
        sample); ``position_ids`` restart at 0 for each sample and ``attention_mask`` is a boolean
        (B, 1, L, L) block-diagonal causal mask, so no sample attends to another. Padding tokens
        attend only to themselves (no all-masked row, hence no NaN).
        Both: ``labels`` (-100 on padding), ``pixel_values`` of all frames in row-major sample order
        (or None), ``group_sizes``, ``seq_index`` (B, L): index in ``feats`` of each token's sample,
        -1 on padding.
        """
        if not feats:
            raise ValueError("collate needs at least one sample")
        lengths = [int(f["input_ids"].shape[0]) for f in feats]
        if pack:
            cap = max_length or max(lengths)
            too_long = [i for i, n in enumerate(lengths) if n > cap]
            if too_long:
                raise ValueError(
                    f"sample {feats[too_long[0]].get('id', too_long[0])!r} has {lengths[too_long[0]]} tokens > {cap}"
                )
            rows: list[list[int]] = []
            room: list[int] = []
            for i, n in enumerate(lengths):
                for r, free in enumerate(room):
                    if free >= n:
                        rows[r].append(i)
                        room[r] -= n
                        break
                else:
                    rows.append([i])
                    room.append(cap - n)
        else:
            if max_length is not None and max(lengths) > max_length:
                raise ValueError(f"a sample has {max(lengths)} tokens > max_length {max_length}")
            rows = [[i] for i in range(len(feats))]
        width = max(sum(lengths[i] for i in row) for row in rows)
        b = len(rows)
        input_ids = torch.full((b, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((b, width), IGNORE_INDEX, dtype=torch.long)
        seq_index = torch.full((b, width), -1, dtype=torch.long)
        position_ids = torch.zeros((b, width), dtype=torch.long)
        for r, row in enumerate(rows):
            pos = 0
            for i in row:
                n = lengths[i]
                input_ids[r, pos : pos + n] = feats[i]["input_ids"]
                labels[r, pos : pos + n] = feats[i]["labels"]
                seq_index[r, pos : pos + n] = i
                position_ids[r, pos : pos + n] = torch.arange(n)
                pos += n
            position_ids[r, pos:] = torch.arange(width - pos)
        order = [i for row in rows for i in row]
        pix = [feats[i]["pixel_values"] for i in order if feats[i].get("pixel_values") is not None]
        groups = [feats[i]["group_sizes"] for i in order]
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "labels": labels,
            "pixel_values": torch.cat(pix) if pix else None,
            "group_sizes": torch.cat(groups) if groups else torch.zeros(0, dtype=torch.long),
            "seq_index": seq_index,
        }
        if pack:
            same = seq_index[:, :, None] == seq_index[:, None, :]
            causal = torch.ones(width, width, dtype=torch.bool).tril()
            pad = seq_index < 0
            eye = torch.eye(width, dtype=torch.bool)
            mask = (same & causal & ~pad[:, None, :]) | (pad[:, :, None] & eye)
            batch["attention_mask"] = mask[:, None]
            batch["position_ids"] = position_ids
        else:
            batch["attention_mask"] = (seq_index >= 0).long()
        return batch


# ---------------------------------------------------------------------------------------- helpers


def _load_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise ProcessorError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ProcessorError(f"cannot read image {path}: {e}") from None


def _select_timed(timestamps: list[float], s: SamplingConfig) -> list[int]:
    """Which pre-extracted frames (with times) to keep, following the sampling strategy."""
    n = len(timestamps)
    if s.strategy == "uniform":
        if n <= s.num_frames:
            return list(range(n))
        return [int(round(x)) for x in np.linspace(0, n - 1, s.num_frames)]
    # fps / clips: the first frame at or after each 1/fps tick, then cap at max_frames uniformly.
    t0 = timestamps[0]
    span = timestamps[-1] - t0
    keep: list[int] = []
    for k in range(int(math.floor(span * s.fps + 1e-9)) + 1):
        i = bisect.bisect_left(timestamps, t0 + k / s.fps - 1e-9)
        if i < n and (not keep or i != keep[-1]):
            keep.append(i)
    limit = s.max_frames
    if s.strategy == "clips":
        limit = s.max_clips * s.frames_per_clip
    if limit is not None and len(keep) > limit:
        keep = [keep[int(round(x))] for x in np.linspace(0, len(keep) - 1, limit)]
    if len(keep) < s.min_frames and n > len(keep):
        keep = [int(round(x)) for x in np.linspace(0, n - 1, min(s.min_frames, n))]
    return keep
