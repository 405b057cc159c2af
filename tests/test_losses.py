"""Losses: hand-computed values, finite-difference gradients, NaN safety, AdaTaiLr's limits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sparrow.train.losses import AdaTaiLr, cross_entropy, tailr_loss, tailr_weight

# Three positions over a vocabulary of 3. Row 0: uniform (p = 1/3 each); row 1: exp(logits) = 1, 3, 1
# so p = 0.2, 0.6, 0.2; row 2 is ignored.
LOGITS = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(3.0), 0.0], [5.0, -2.0, 1.0]])
LABELS = torch.tensor([0, 1, -100])


def test_tailr_hand_computed_gamma_half():
    # γ = 0.5: w = p / (γ + (1-γ) p) -> row 0: (1/3) / (2/3) = 0.5; row 1: 0.6 / 0.8 = 0.75.
    expected = 0.5 * math.log(3.0) + 0.75 * -math.log(0.6)
    got = tailr_loss(LOGITS, LABELS, gamma=0.5)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert tailr_loss(LOGITS, LABELS, gamma=0.5, reduction="mean").item() == pytest.approx(
        expected / 2, rel=1e-6
    )


def test_tailr_hand_computed_min_weight_and_smoothing():
    eps = 0.1
    # ρ = 0.6 clamps row 0's weight 0.5 up to 0.6; row 1 keeps 0.75. The smoothing term is unweighted:
    # ε · mean_v(-log p_v): row 0: log 3; row 1: -(2 log 0.2 + log 0.6) / 3.
    smooth0 = math.log(3.0)
    smooth1 = -(2 * math.log(0.2) + math.log(0.6)) / 3
    expected = (1 - eps) * (0.6 * math.log(3.0) + 0.75 * -math.log(0.6)) + eps * (smooth0 + smooth1)
    got = tailr_loss(LOGITS, LABELS, gamma=0.5, min_weight=0.6, label_smoothing=eps)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_tailr_gamma_limits():
    # γ = 1 gives w = p.
    expected = (1 / 3) * math.log(3.0) + 0.6 * -math.log(0.6)
    assert tailr_loss(LOGITS, LABELS, gamma=1.0).item() == pytest.approx(expected, rel=1e-6)
    # γ -> 0 gives cross-entropy (with and without smoothing, matching torch's definition).
    for eps in (0.0, 0.1):
        ce = F.cross_entropy(LOGITS, LABELS, ignore_index=-100, reduction="sum", label_smoothing=eps)
        assert tailr_loss(LOGITS, LABELS, gamma=1e-12, label_smoothing=eps).item() == pytest.approx(
            ce.item(), rel=1e-6
        )
        assert cross_entropy(LOGITS, LABELS, label_smoothing=eps).item() == pytest.approx(ce.item(), rel=1e-6)
    with pytest.raises(ValueError, match="gamma > 0"):
        tailr_loss(LOGITS, LABELS, gamma=0.0)


def test_ignore_mask_built_before_remap():
    # Ignored labels must not be trained as token 0: changing row 2's logits changes nothing.
    other = LOGITS.clone()
    other[2] = torch.tensor([-50.0, 40.0, 3.0])
    assert torch.equal(tailr_loss(LOGITS, LABELS, gamma=0.1), tailr_loss(other, LABELS, gamma=0.1))
    g = LOGITS.clone().requires_grad_(True)
    tailr_loss(g, LABELS, gamma=0.1, label_smoothing=0.1).backward()
    assert torch.all(g.grad[2] == 0)
    # All positions ignored: mean is 0, not NaN.
    none = torch.full((3,), -100)
    assert tailr_loss(LOGITS, none, gamma=0.1, reduction="mean").item() == 0.0


def test_cross_entropy_gradcheck_float64():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 7, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 7, (2, 4))
    y[0, 1] = -100
    assert torch.autograd.gradcheck(
        lambda t: cross_entropy(t, y, label_smoothing=0.1, reduction="mean"), (z,)
    )


def test_tailr_gradient_matches_finite_differences_of_frozen_weight_objective():
    """TaiLr's weight carries no gradient, so the gradient must equal the finite-difference gradient of
    the objective with w held at its current value (and NOT that of the loss with w moving)."""
    torch.manual_seed(1)
    z0 = torch.randn(5, 6, dtype=torch.float64)
    y = torch.tensor([0, 3, -100, 5, 2])
    gamma, rho, eps = 0.3, 0.05, 0.1
    lp0 = F.log_softmax(z0, -1).gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    w0 = tailr_weight(lp0, gamma, rho).double()
    mask = y != -100

    def frozen(z: torch.Tensor) -> torch.Tensor:
        lp = F.log_softmax(z, -1)
        t = lp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        per = (1 - eps) * w0 * -t + eps * -lp.mean(-1)
        return (per * mask).sum()

    assert torch.autograd.gradcheck(frozen, (z0.clone().requires_grad_(True),))
    z = z0.clone().requires_grad_(True)
    tailr_loss(z, y, gamma=gamma, min_weight=rho, label_smoothing=eps).backward()
    # Central differences in float64 of the frozen objective.
    h = 1e-6
    numeric = torch.zeros_like(z0)
    for idx in range(z0.numel()):
        d = torch.zeros(z0.numel(), dtype=torch.float64)
        d[idx] = h
        d = d.view_as(z0)
        numeric.view(-1)[idx] = (frozen(z0 + d) - frozen(z0 - d)) / (2 * h)
    assert torch.allclose(z.grad, numeric, atol=1e-7)
    # The full loss (weight moving with z) has a different finite-difference gradient: stop-grad is real.
    full = torch.zeros_like(z0)
    for idx in range(z0.numel()):
        d = torch.zeros(z0.numel(), dtype=torch.float64)
        d[idx] = h
        d = d.view_as(z0)
        lo = tailr_loss(z0 - d, y, gamma=gamma, min_weight=rho, label_smoothing=eps).double()
        hi = tailr_loss(z0 + d, y, gamma=gamma, min_weight=rho, label_smoothing=eps).double()
        full.view(-1)[idx] = (hi - lo) / (2 * h)
    assert not torch.allclose(z.grad.float(), full.float(), atol=1e-3)


def test_closed_form_gradient():
    # dL/dz_k = w (p_k - [k = y]) for one token without smoothing.
    z = torch.tensor([[0.5, -1.0, 2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1])
    tailr_loss(z, y, gamma=0.2).backward()
    p = torch.softmax(z.detach(), -1)[0]
    w = (p[1] / (0.2 + 0.8 * p[1])).item()
    expected = w * (p - F.one_hot(y, 4)[0].double())
    assert torch.allclose(z.grad[0], expected, atol=1e-6)


@pytest.mark.parametrize("gamma", [1e-30, 1e-12, 1e-7, 0.8, 1.0])
def test_nan_safety_tiny_gamma_and_extreme_p(gamma):
    # p of the target ~ e^-1000 (0 in fp32), p ~ 1 exactly, and ordinary rows; bf16 logits too.
    z = torch.tensor([[-1000.0, 0.0, 0.0], [1000.0, 0.0, -5.0], [0.1, 0.2, 0.3], [-3e4, 3e4, 0.0]])
    y = torch.tensor([0, 0, 2, 0])
    for dtype in (torch.float32, torch.bfloat16):
        zz = z.to(dtype).detach().requires_grad_(True)
        loss = tailr_loss(zz, y, gamma=gamma, min_weight=0.0, label_smoothing=0.1, reduction="mean")
        loss.backward()
        assert torch.isfinite(loss) and loss.dtype == torch.float32
        assert torch.isfinite(zz.grad.float()).all()
    w = tailr_weight(F.log_softmax(z, -1).gather(-1, y.unsqueeze(-1)).squeeze(-1), gamma)
    assert torch.isfinite(w).all() and (w >= 0).all() and (w <= 1).all()
    assert w[1].item() == 1.0  # p = 1 -> w = 1 exactly, whatever γ


def test_adatailr_constant_gamma_is_tailr_and_lambda_zero_is_ce():
    torch.manual_seed(2)
    const = AdaTaiLr(gamma=0.3, min_weight=0.2, label_smoothing=0.1)
    zero = AdaTaiLr(lam=0.0, label_smoothing=0.1)
    for _ in range(4):
        z = torch.randn(3, 5, 11) * 3
        y = torch.randint(0, 11, (3, 5))
        y[:, 0] = -100
        assert torch.equal(const(z, y), tailr_loss(z, y, 0.3, min_weight=0.2, label_smoothing=0.1))
        assert torch.equal(zero(z, y), cross_entropy(z, y, label_smoothing=0.1))
        const.step()
        assert zero.step() == 0.0
    assert const.gamma == 0.3 and const.last_gamma == 0.3


def test_adatailr_gamma_follows_ema_of_target_probability():
    ada = AdaTaiLr(lam=2.0, momentum=0.5)
    assert ada.gamma == 0.0  # nothing observed: cross-entropy
    # Row 0 target p = 1/3, row 1 target p = 0.6 -> batch mean 7/15.
    z = LOGITS.clone().requires_grad_(True)
    first = ada(z, LABELS)
    assert first.item() == pytest.approx(cross_entropy(LOGITS, LABELS).item(), rel=1e-6)
    g = ada.step()
    assert ada.s == pytest.approx(7 / 15) and g == pytest.approx(1 - math.exp(-2 * 7 / 15))
    assert ada.last_mean_weight == pytest.approx(1.0)  # the step was cross-entropy
    # Split the next batch into two micro-batches: the same s as one batch (count-weighted mean).
    ada(LOGITS[:1], LABELS[:1])
    ada(LOGITS[1:], LABELS[1:])
    assert ada.last_gamma == pytest.approx(g)
    ada.step()
    assert ada.s == pytest.approx(0.5 * 7 / 15 + 0.5 * 7 / 15)
    # Confident predictions push s, hence Γ, up.
    confident = torch.tensor([[9.0, 0.0, 0.0], [0.0, 9.0, 0.0]])
    before = ada.gamma
    ada(confident, torch.tensor([0, 1]))
    assert ada.step() > before
    # Weights under Γ: mean weight is logged and below 1.
    ada(LOGITS, LABELS)
    ada.step()
    assert 0 < ada.last_mean_weight < 1
    state = ada.state_dict()
    other = AdaTaiLr(lam=2.0, momentum=0.5)
    other.load_state_dict(state)
    assert other.gamma == ada.gamma and other.steps == ada.steps
