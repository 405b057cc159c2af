"""The one padding and batching code: training, evaluation and generation all pad here.

``collate`` batches processor outputs (right-padded, or packed several per row) and ``model_inputs`` takes a
batch's targets off for the forward pass; ``pad_right`` pads
token lists on the right (candidate answers); ``pad_left`` pads prompts on the left so every row's last
position predicts that row's next token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

IGNORE_INDEX = -100  # label of a position that carries no loss (prompt, visual tokens, padding)
TARGETS = ("labels", "visual_mask")  # what a batch carries for the loss; the model's forward takes the rest

Tokens = Sequence[int] | torch.Tensor


class CollateError(ValueError):
    """Samples cannot be batched as asked (none given, or one longer than the row)."""


def pad_right(
    seqs: Sequence[Tokens], pad_id: int, width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)``, both ``(B, width)`` long; width defaults to the longest sequence."""
    lengths = [len(s) for s in seqs]
    width = max(lengths, default=0) if width is None else width
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        ids[r, :n] = torch.as_tensor(s, dtype=torch.long)
        mask[r, :n] = 1
    return ids, mask


def pad_left(seqs: Sequence[Tokens], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask, position_ids)``, each ``(B, width)`` long. Position ids start at 0 on each
    row's first real token, so a left-padded row computes exactly what it would alone."""
    lengths = [len(s) for s in seqs]
    width = max(lengths, default=0)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        if n:
            ids[r, width - n :] = torch.as_tensor(s, dtype=torch.long)
            mask[r, width - n :] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, position_ids


def _pack_rows(lengths: list[int], cap: int) -> list[list[int]]:
    """First-fit: each sample goes into the first row with room for it, in order."""
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
    return rows


def _rows(
    feats: list[dict[str, Any]], lengths: list[int], pack: bool, max_length: int | None
) -> list[list[int]]:
    if pack:
        cap = max_length or max(lengths)
        too_long = [i for i, n in enumerate(lengths) if n > cap]
        if too_long:
            i = too_long[0]
            raise CollateError(f"sample {feats[i].get('id', i)!r} has {lengths[i]} tokens > {cap}")
        return _pack_rows(lengths, cap)
    if max_length is not None and max(lengths) > max_length:
        raise CollateError(f"a sample has {max(lengths)} tokens > max_length {max_length}")
    return [[i] for i in range(len(feats))]


def collate(
    feats: list[dict[str, Any]], pad_id: int, pack: bool = False, max_length: int | None = None
) -> dict[str, Any]:
    """Batch processed samples (``Processor.__call__`` outputs).

    Unpacked: one sample per row, right-padded; ``attention_mask`` (B, L) of 0/1.
    Packed: samples go first-fit into rows of ``max_length`` tokens (default: the longest sample);
    ``position_ids`` restart at 0 for each sample and ``attention_mask`` is a boolean (B, 1, L, L)
    block-diagonal causal mask, so no sample attends to another. Padding tokens attend only to
    themselves (no all-masked row, hence no NaN).
    Both: ``labels`` (-100 on padding), ``pixel_values`` of all frames in row-major sample order (or
    None), ``group_sizes``, ``seq_index`` (B, L): index in ``feats`` of each token's sample, -1 on padding;
    ``visual_mask`` (B, L) bool when any sample carries one (the processor's visual terms).
    """
    if not feats:
        raise CollateError("collate needs at least one sample")
    lengths = [int(f["input_ids"].shape[0]) for f in feats]
    rows = _rows(feats, lengths, pack, max_length)
    width = max(sum(lengths[i] for i in row) for row in rows)
    b = len(rows)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)
    labels = torch.full((b, width), IGNORE_INDEX, dtype=torch.long)
    seq_index = torch.full((b, width), -1, dtype=torch.long)
    position_ids = torch.zeros((b, width), dtype=torch.long)
    has_visual = any(f.get("visual_mask") is not None for f in feats)
    visual_mask = torch.zeros((b, width), dtype=torch.bool) if has_visual else None
    for r, row in enumerate(rows):
        pos = 0
        for i in row:
            n = lengths[i]
            input_ids[r, pos : pos + n] = feats[i]["input_ids"]
            labels[r, pos : pos + n] = feats[i]["labels"]
            seq_index[r, pos : pos + n] = i
            if visual_mask is not None and feats[i].get("visual_mask") is not None:
                visual_mask[r, pos : pos + n] = feats[i]["visual_mask"]
            position_ids[r, pos : pos + n] = torch.arange(n)
            pos += n
        position_ids[r, pos:] = torch.arange(width - pos)
    order = [i for row in rows for i in row]
    batch: dict[str, Any] = {
        "input_ids": input_ids,
        "labels": labels,
        "seq_index": seq_index,
        **visual_inputs([feats[i] for i in order]),
    }
    if visual_mask is not None:
        batch["visual_mask"] = visual_mask
    if pack:
        batch["attention_mask"] = _block_causal_mask(seq_index)[:, None]
        batch["position_ids"] = position_ids
    else:
        batch["attention_mask"] = (seq_index >= 0).long()
    return batch


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """A collated batch without its targets (``labels``, ``visual_mask``): what a model's forward takes."""
    return {k: v for k, v in batch.items() if k not in TARGETS}


def visual_inputs(feats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``pixel_values`` (all frames, in ``feats`` order, or None) and ``group_sizes`` of a batch."""
    pix = [f["pixel_values"] for f in feats if f.get("pixel_values") is not None]
    groups = [f["group_sizes"] for f in feats]
    return {
        "pixel_values": torch.cat(pix) if pix else None,
        "group_sizes": torch.cat(groups) if groups else torch.zeros(0, dtype=torch.long),
    }


def _block_causal_mask(seq_index: torch.Tensor) -> torch.Tensor:
    width = seq_index.shape[1]
    same = seq_index[:, :, None] == seq_index[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    pad = seq_index < 0
    eye = torch.eye(width, dtype=torch.bool)
    return (same & causal & ~pad[:, None, :]) | (pad[:, :, None] & eye)
