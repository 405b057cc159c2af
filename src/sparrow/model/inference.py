"""Inference helpers: log-likelihood scoring of candidate answers, and greedy generation.

Both run the vision path and the prompt once; candidates / new tokens reuse the prompt's KV cache
(passed as ``cache=``, the argument transformers names it since 5.24). Padding is ``model.collate``'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from sparrow.model.collate import pad_right
from sparrow.model.config import SamplingConfig
from sparrow.model.videollm import output_cache
from sparrow.records import Sample


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _prompt(
    model: Any, processor: Any, sample: Sample, root: Any, sampling: SamplingConfig | None, media_root: Any
):
    feats = processor(sample, root, sampling=sampling, generation=True, media_root=media_root)
    device = model.device
    ids = feats["input_ids"][None].to(device)
    pix = feats["pixel_values"]
    pix = pix.to(device) if pix is not None else None
    # Only the last position's logits are read (the next token): the LM head runs there alone.
    out = model(
        input_ids=ids,
        pixel_values=pix,
        group_sizes=feats["group_sizes"],
        use_cache=True,
        logits_to_keep=1,
    )
    return ids, out


def score_options(
    model: Any,
    processor: Any,
    sample: Sample,
    candidates: list[str],
    root: str | os.PathLike,
    sampling: SamplingConfig | None = None,
    media_root: str | os.PathLike | None = None,
) -> list[float]:
    """Sum of log-probabilities of each candidate as the assistant reply to the sample's user turn(s).

    Only the candidate's own tokens are scored (not the end-of-turn token), tokenized exactly as the
    processor tokenizes an assistant reply, so the score equals the summed label log-probs of the
    same sample with that reply, minus its end-of-turn term.
    """
    if not candidates:
        return []
    tok = processor.tokenizer
    cand_ids = [tok(c, add_special_tokens=False)["input_ids"] for c in candidates]
    if any(not c for c in cand_ids):
        raise ValueError("empty candidate answer")
    with _eval_mode(model):
        prompt_ids, out = _prompt(model, processor, sample, root, sampling, media_root)
        first_logp = F.log_softmax(out.logits[0, -1].float(), dim=-1)  # predicts each candidate's 1st token
        n = len(candidates)
        device = prompt_ids.device
        ids, mask = pad_right(cand_ids, processor.pad_token_id)
        ids, mask = ids.to(device), mask.to(device)
        scores = [float(first_logp[c[0]]) for c in cand_ids]
        if ids.shape[1] > 1:
            cache = output_cache(out)
            cache.batch_repeat_interleave(n)
            full_mask = torch.cat(
                [torch.ones((n, prompt_ids.shape[1]), dtype=torch.long, device=device), mask], 1
            )
            # Feed all but the last token: position j predicts candidate token j + 1; logits only where
            # that token is a real one (not padding).
            at = mask[:, 1:].bool()
            rest = model(
                input_ids=ids[:, :-1],
                attention_mask=full_mask[:, :-1],
                cache=cache,
                use_cache=True,
                logits_at=at,
            )
            logp = F.log_softmax(rest.logits.float(), dim=-1)  # (N, V), row-major over ``at``
            picked = logp.gather(-1, ids[:, 1:][at].unsqueeze(-1)).squeeze(-1)
            row = torch.arange(n, device=device).unsqueeze(1).expand_as(at)[at]
            sums = torch.zeros(n, dtype=picked.dtype, device=device).index_add_(0, row, picked)
            for i in range(n):
                scores[i] += float(sums[i])
    return scores


def generate(
    model: Any,
    processor: Any,
    sample: Sample,
    root: str | os.PathLike,
    max_new_tokens: int = 32,
    sampling: SamplingConfig | None = None,
    media_root: str | os.PathLike | None = None,
) -> str:
    """Greedy decoding of the assistant reply to the sample's last user turn; stops at end of turn."""
    eos = set(getattr(model, "eos_token_ids", []) or [processor.tokenizer.eos_token_id])
    new: list[int] = []
    with _eval_mode(model):
        _, out = _prompt(model, processor, sample, root, sampling, media_root)
        cache = output_cache(out)
        nxt = int(out.logits[0, -1].argmax())
        for _ in range(max_new_tokens):
            if nxt in eos:
                break
            new.append(nxt)
            step = model(input_ids=torch.tensor([[nxt]], device=model.device), cache=cache, use_cache=True)
            cache = output_cache(step)
            nxt = int(step.logits[0, -1].argmax())
    return processor.tokenizer.decode(new, skip_special_tokens=True)
