"""Token losses for training: cross-entropy, TaiLr and AdaTaiLr.

All three take ``logits`` (..., V) and ``labels`` (...) that are already aligned: the caller shifts for
causal LM training (``logits[:, :-1]`` against ``labels[:, 1:]``). Positions whose label equals
``ignore_index`` contribute nothing. Everything is computed in float32 (float64 stays float64) whatever the logits' dtype,
because in bf16 ``1 - p`` collapses to 0 or 1 for confident tokens.

TaiLr (Ji et al., ICLR 2023), as its reference code computes it, per target token with p = model
probability of the target in the same forward pass::

    w    = p / (γ + (1 - γ) p) = sigmoid(log p - log(1 - p) - log γ)     (no gradient; clamped to [ρ, 1])
    loss = (1 - ε) Σ w · (-log p)  +  (ε / V) Σ_v (-log p_v)              (smoothing term NOT weighted)

γ → 0 gives cross-entropy, γ = 1 gives w = p. The sigmoid form never divides by zero; γ = 0 itself is
refused (the log is -inf), so pass a tiny γ instead.

AdaTaiLr (Video DataFlywheel) makes the trade-off factor adaptive. Its exact function is not public;
Sparrow's documented design is ``Γ_t = 1 - exp(-λ s_t)`` with ``s_t`` an exponential moving average of
the batch-mean target-token probability, computed without gradient. λ = 0 gives cross-entropy; a
constant-Γ mode reproduces TaiLr exactly.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

Reduction = Literal["sum", "mean"]


def _flatten(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not align")
    return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)


def _reduce(per_token: torch.Tensor, n: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return per_token.sum()
    if reduction == "mean":
        # A batch with no supervised token gives 0 (not NaN) and still keeps the graph connected.
        return per_token.sum() / n.clamp(min=1)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    # fp32 for half types (1 - p collapses in bf16); float64 stays float64 (gradient checks).
    return x if x.dtype == torch.float64 else x.float()


def _target_logprobs(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log-probs (N, V) in fp32, log p of each target (N,), mask (N,)).

    The ignore mask is built BEFORE ignored labels are remapped to a valid index for ``gather``;
    remapping first would silently train on token 0 at every ignored position.
    """
    logits, labels = _flatten(logits, labels)
    mask = labels != ignore_index
    safe = labels.masked_fill(~mask, 0)
    logprobs = F.log_softmax(_at_least_fp32(logits), dim=-1)
    target = logprobs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return logprobs, target, mask


def tailr_weight(target_logprob: torch.Tensor, gamma: float, min_weight: float = 0.0) -> torch.Tensor:
    """TaiLr's per-token weight ``sigmoid(log p - log(1 - p) - log γ)`` clamped to [ρ, 1], without grad.

    ``log(1 - p)`` is ``log(-expm1(log p))``, exact even when p is within 1e-8 of 1; at p = 1 it is
    -inf and the sigmoid gives exactly 1, never NaN.
    """
    if not gamma > 0:
        raise ValueError(f"TaiLr needs gamma > 0 (gamma = 0 gives NaN); got {gamma!r}")
    if not 0.0 <= min_weight <= 1.0:
        raise ValueError(f"min_weight must be in [0, 1], got {min_weight!r}")
    with torch.no_grad():
        lp = _at_least_fp32(target_logprob.detach()).clamp(max=0.0)
        log1m_p = torch.log(-torch.expm1(lp))
        w = torch.sigmoid(lp - log1m_p - math.log(gamma))
        return w.clamp(min=min_weight, max=1.0)


def _weighted_loss(
    logprobs: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor | None,
    label_smoothing: float,
    reduction: str,
) -> torch.Tensor:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    nll = -target
    if weight is not None:
        nll = weight * nll
    per_token = (1.0 - label_smoothing) * nll
    if label_smoothing > 0:
        # Mean over the vocabulary of -log p_v; unweighted, as in TaiLr's reference code.
        per_token = per_token + label_smoothing * (-logprobs.mean(dim=-1))
    per_token = torch.where(mask, per_token, torch.zeros_like(per_token))
    return _reduce(per_token, mask.sum(), reduction)


def cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """Token cross-entropy in fp32 over non-ignored positions (sum, or mean over those positions)."""
    logprobs, target, mask = _target_logprobs(logits, labels, ignore_index)
    return _weighted_loss(logprobs, target, mask, None, label_smoothing, reduction)


def tailr_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    gamma: float,
    min_weight: float = 0.0,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """TaiLr loss (see the module docstring): ``(1-ε) Σ w·(-log p) + (ε/V) Σ_v (-log p_v)``."""
    logprobs, target, mask = _target_logprobs(logits, labels, ignore_index)
    weight = tailr_weight(target, gamma, min_weight)
    return _weighted_loss(logprobs, target, mask, weight, label_smoothing, reduction)


class AdaTaiLr:
    """TaiLr with an adaptive trade-off factor ``Γ_t = 1 - exp(-λ s_t)``.

    ``s_t`` is an exponential moving average (``momentum``) of the batch-mean probability the model
    gives the target tokens, computed without gradient. Calling the object computes the loss of a
    (micro-)batch with the current Γ and accumulates that batch's target-probability statistics;
    :meth:`step` (once per optimizer step) folds them into ``s`` and updates Γ. So Γ is constant within
    an optimizer step and does not depend on how the global batch is split into micro-batches or
    ranks (when ``torch.distributed`` is initialised the statistics are summed over ranks). Γ therefore
    follows the training state with a lag of one step. Before anything is observed Γ = 0 (plain
    cross-entropy) and the first observed batch mean seeds ``s`` (unless ``init_s`` is given); Γ then
    rises as the model grows confident.

    ``gamma`` set → constant-Γ mode: exactly :func:`tailr_loss` with that γ; ``s`` is still tracked
    for logging. ``lam = 0`` → Γ = 0 → exactly cross-entropy.
    """

    def __init__(
        self,
        lam: float = 1.0,
        momentum: float = 0.99,
        gamma: float | None = None,
        min_weight: float = 0.0,
        label_smoothing: float = 0.0,
        ignore_index: int = -100,
        reduction: Reduction = "sum",
        init_s: float | None = None,
    ):
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if gamma is not None and not gamma > 0:
            raise ValueError(f"constant gamma must be > 0, got {gamma!r}")
        self.lam = float(lam)
        self.momentum = float(momentum)
        self.constant_gamma = None if gamma is None else float(gamma)
        self.min_weight = float(min_weight)
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = int(ignore_index)
        self.reduction: Reduction = reduction
        self.s: float | None = None if init_s is None else float(init_s)
        self.steps = 0
        self.last_gamma = self.gamma
        self.last_mean_weight = float("nan")
        self._p_sum = 0.0
        self._count = 0.0
        self._w_sum = 0.0

    @property
    def gamma(self) -> float:
        """The Γ the next call will use."""
        if self.constant_gamma is not None:
            return self.constant_gamma
        if self.s is None:
            return 0.0  # nothing observed yet: cross-entropy
        return 1.0 - math.exp(-self.lam * self.s)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logprobs, target, mask = _target_logprobs(logits, labels, self.ignore_index)
        gamma = self.gamma
        if gamma > 0:
            weight = tailr_weight(target, gamma, self.min_weight)
        else:
            weight = torch.ones_like(target)  # Γ = 0 is cross-entropy: w = 1 for every token
        with torch.no_grad():
            m = mask.float()
            self._p_sum += float((target.detach().exp() * m).sum())
            self._w_sum += float((weight * m).sum())
            self._count += float(m.sum())
        self.last_gamma = gamma
        loss = _weighted_loss(
            logprobs, target, mask, weight if gamma > 0 else None, self.label_smoothing, self.reduction
        )
        return loss

    def step(self) -> float:
        """Fold the statistics gathered since the last step into ``s``; return the new Γ."""
        stats = torch.tensor([self._p_sum, self._count, self._w_sum], dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # NCCL reduces only GPU tensors.
            if torch.distributed.get_backend() == "nccl":
                stats = stats.cuda()
            torch.distributed.all_reduce(stats)
            stats = stats.cpu()
        p_sum, count, w_sum = stats.tolist()
        self._p_sum = self._count = self._w_sum = 0.0
        if count > 0:
            batch_p = p_sum / count
            # The first observation seeds the average (no bias towards 0) unless init_s was given.
            self.s = batch_p if self.s is None else self.momentum * self.s + (1 - self.momentum) * batch_p
            self.last_mean_weight = w_sum / count
            self.steps += 1
        return self.gamma

    def state_dict(self) -> dict[str, Any]:
        return {"s": self.s, "steps": self.steps, "last_mean_weight": self.last_mean_weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.s = None if state["s"] is None else float(state["s"])
        self.steps = int(state["steps"])
        self.last_mean_weight = float(state.get("last_mean_weight", float("nan")))
        self.last_gamma = self.gamma
