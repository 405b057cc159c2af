"""One optimizer step: forward and backward over the step's micro-batches, then one update of everything
that moves per optimizer step: the weights, the learning-rate schedule and AdaTaiLr's running Γ.

Logits are computed only at supervised positions (``VideoLLM.forward(logits_at=...)``): the LM head
and the (B, L, V) activation would otherwise cost as much as a small LM's layers.

Loss split: when the batch carries ``visual_mask`` (the processor's visual terms), the row also holds
``loss_visual`` and ``loss_other``: the cross-entropy (nats per token, whatever the training loss) of the
supervised tokens that name what the video shows and of the rest, and ``visual_tokens``. With the
``ce`` loss, ``loss`` is their token-weighted mean.

Loss normalisation: every micro-batch contributes the *sum* of its token losses; after the last
micro-batch the gradients are divided by the number of supervised tokens of the whole global batch (all
micro-batches, all ranks). So a step's update is the same whether its samples ran on one process with
accumulation or on N processes, and long and short samples weigh per token.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparrow.model.collate import IGNORE_INDEX
from sparrow.train import distributed as D
from sparrow.train.data import DataError
from sparrow.train.losses import AdaTaiLr
from sparrow.train.optim import LossFn


@dataclass
class StepSetup:
    """What every step of a stage uses. ``fwd`` is what the forward pass runs through (the DDP wrapper
    or the model itself); ``model`` is the bare (or FSDP-sharded) model."""

    model: nn.Module
    fwd: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    accum: int
    grad_clip: float | None
    info: D.DistInfo
    use_bf16: bool = False
    # Stepped after each update (a stage's; None: a bare step, as benchmarks and tests run it).
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    ada: AdaTaiLr | None = None  # the AdaTaiLr loss (``loss_fn`` itself) when the stage trains with it

    @property
    def trainable(self) -> list[nn.Parameter]:
        # In the model's order (not the optimizer's): the clipping norm sums in this order.
        return [p for p in self.model.parameters() if p.requires_grad]


def train_step(s: StepSetup, batches: Iterator[dict[str, Any]], where: str) -> dict[str, Any]:
    """Run one optimizer step on the next ``s.accum`` micro-batches; returns its metrics row with
    ``errors`` (the samples every rank rejected, gathered). ``where`` names the step in messages."""
    t0 = time.perf_counter()
    wait = 0.0
    loss_sum = torch.zeros((), dtype=torch.float64, device=s.info.device)
    split = torch.zeros(5, dtype=torch.float64)  # visual loss sum, tokens, other loss sum, tokens, batches
    n_sup = n_tok = n_samples = 0
    errors: list[dict[str, Any]] = []
    for m in range(s.accum):
        tw = time.perf_counter()
        item = next(batches)
        wait += time.perf_counter() - tw
        errors += item["errors"]
        if item["batch"] is None:
            first = errors[0]["reason"] if errors else "unknown"
            raise DataError(f"{where}: every sample of a micro-batch was rejected (first reason: {first})")
        n_samples += item["samples"]
        loss, sup, tok, parts = _micro_step(s, item["batch"], last=m == s.accum - 1)
        loss_sum += loss
        split += parts
        n_sup += sup
        n_tok += tok
    stats = torch.tensor([float(loss_sum), n_sup, n_tok, n_samples, len(errors)], dtype=torch.float64)
    summed = D.all_reduce_sum(torch.cat([stats, split]), s.info).tolist()
    total_loss, total_sup, tokens, samples, skipped = summed[:5]
    grad_norm = _update(s, total_sup)
    if skipped > 0:
        errors = [e for part in D.gather_objects(errors, s.info) for e in part]
    elapsed = max(time.perf_counter() - t0, 1e-9)
    row = {
        "loss": total_loss / total_sup if total_sup else float("nan"),
        **_split_row(summed[5:]),
        "lr": {g["part"]: g["lr"] for g in s.optimizer.param_groups},
        "grad_norm": grad_norm,
        "tokens": int(tokens),
        "supervised_tokens": int(total_sup),
        "samples": int(samples),
        "skipped": int(skipped),
        "tokens_per_s": tokens / elapsed,
        "samples_per_s": samples / elapsed,
        "data_wait_s": wait,
        "step_time_s": elapsed,
        "errors": errors,
    }
    if s.scheduler is not None:
        s.scheduler.step()
    if s.ada is not None:
        row["gamma"] = s.ada.last_gamma  # the Γ this step used
        s.ada.step()  # folds the step's statistics (summed over ranks) into the average
        row["mean_weight"] = s.ada.last_mean_weight
    return row


def _split_row(split: list[float]) -> dict[str, Any]:
    vis_sum, n_vis, other_sum, n_other, batches = split
    if not batches:
        return {}
    return {
        "loss_visual": vis_sum / n_vis if n_vis else None,
        "loss_other": other_sum / n_other if n_other else None,
        "visual_tokens": int(n_vis),
    }


def _loss_split(logits: torch.Tensor, target: torch.Tensor, visual: torch.Tensor | None) -> torch.Tensor:
    """(visual CE sum, visual tokens, other CE sum, other tokens, 1) of a micro-batch; zeros without a
    visual mask. ``logits`` (N, V) and ``target`` (N,) are the supervised positions only."""
    if visual is None:
        return torch.zeros(5, dtype=torch.float64)
    with torch.no_grad():
        nll = F.cross_entropy(logits.float(), target, reduction="none").double()
        vis = visual.to(nll.device)
        parts = [nll[vis].sum(), vis.sum(), nll[~vis].sum(), (~vis).sum()]
        return torch.stack([p.double() for p in parts] + [torch.ones((), dtype=torch.float64)]).cpu()


def _micro_step(
    s: StepSetup, batch: dict[str, Any], last: bool
) -> tuple[torch.Tensor, int, int, torch.Tensor]:
    """Forward and backward of one micro-batch: (summed loss, supervised tokens, non-padding tokens,
    the loss split's sums)."""
    device = s.info.device
    labels = batch.pop("labels")
    seq_index = batch.get("seq_index")  # stays in the inputs: a packed batch's LM pass may use it
    visual = batch.pop("visual_mask", None)
    n_tok = int((seq_index >= 0).sum()) if seq_index is not None else labels.numel()
    target = labels[:, 1:].to(device, non_blocking=True)
    sel = target != IGNORE_INDEX
    # Position t predicts label t + 1: logits are needed at the positions before a supervised label.
    logits_at = torch.nn.functional.pad(sel, (0, 1), value=False)
    inputs = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
    # Gradients are reduced across ranks on the step's last micro-batch only.
    sync = contextlib.nullcontext()
    if D.is_fsdp(s.model):
        s.model.set_requires_gradient_sync(last)
    elif hasattr(s.fwd, "no_sync") and not last:
        sync = s.fwd.no_sync()
    with sync:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=s.use_bf16):
            logits = s.fwd(**inputs, logits_at=logits_at).logits  # (N, V): supervised positions only
        loss = s.loss_fn(logits, target[sel])
        loss.backward()
    split = _loss_split(
        logits.detach(), target[sel], visual[:, 1:][sel.cpu()] if visual is not None else None
    )
    return loss.detach().double(), int(sel.sum()), n_tok, split


def _update(s: StepSetup, total_sup: float) -> float:
    """Scale, clip and apply the step's gradients; returns the norm before clipping (NaN: no update)."""
    grad_norm = float("nan")
    if total_sup > 0:
        # Gradients hold sum-of-token-losses (averaged over ranks by DDP/FSDP): make it the mean
        # over every supervised token of the global batch.
        scale = s.info.world_size / total_sup
        trainable = s.trainable
        for p in trainable:
            if p.grad is not None:
                p.grad.mul_(scale)
        clip = s.grad_clip if s.grad_clip else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(trainable, clip)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    return grad_norm
