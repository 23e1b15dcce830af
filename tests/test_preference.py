"""The preference chapter: DPO and the z-loss against an independent implementation, its
widget against autograd, and its self-check answers.

There is no maintained reference small enough to pin for one function: TRL, which ships the
best-known ``DPOTrainer``, brings transformers, datasets and accelerate with it, far too heavy
a test dependency for a four-term formula. So the reference here is written independently,
element by element in plain Python ``math`` from the paper's formula (Rafailov et al., 2023,
eq. 7; the label-smoothed "conservative" form as TRL documents it), and checked against the
course's vectorised torch version for every reduction, several β and label smoothings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losslab.figures import preference as figures
from losslab.losses import preference

f64 = torch.float64


def reference_dpo(pc, pr, rc, rr, beta, eps):
    """Per pair, in plain floats: ``-(1-eps) log sigma(beta m) - eps log sigma(-beta m)``."""
    out = []
    for a, b, c, d in zip(pc, pr, rc, rr):
        x = beta * ((a - c) - (b - d))
        # log sigma(x) = -log(1 + e^{-x}), written to stay finite for large |x|
        log_sig = -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))
        log_sig_neg = log_sig - x                   # log sigma(-x) = log sigma(x) - x
        out.append(-(1 - eps) * log_sig - eps * log_sig_neg)
    return out


def _pairs(seed, n=16):
    gen = torch.Generator().manual_seed(seed)
    return [(-60 + 20 * torch.rand(n, generator=gen, dtype=f64)) for _ in range(4)]


@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5, 2.0])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_dpo_matches_an_independent_implementation(beta, eps, reduction):
    pc, pr, rc, rr = _pairs(int(100 * beta) + int(10 * eps))
    expected = torch.tensor(reference_dpo(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(),
                                          beta, eps), dtype=f64)
    expected = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}[reduction]
    got = preference.dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=eps, reduction=reduction)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_dpo_stays_finite_and_right_at_huge_margins():
    big = torch.tensor([800.0, -800.0], dtype=f64)
    zero = torch.zeros(2, dtype=f64)
    got = preference.dpo_loss(big, zero, zero, zero, beta=1.0, reduction="none")
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.tensor([0.0, 800.0], dtype=f64))


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_dpo_gradient_in_each_log_probability(eps):
    pc, pr, rc, rr = (t.clone().requires_grad_(True) for t in _pairs(3, n=5))
    beta = 0.3
    loss = preference.dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=eps, reduction="sum")
    grads = torch.autograd.grad(loss, (pc, pr, rc, rr))
    m = ((pc - rc) - (pr - rr)).detach()
    d_m = beta * (torch.sigmoid(beta * m) - 1 + eps)
    for g, sign in zip(grads, (1, -1, -1, 1)):
        torch.testing.assert_close(g, sign * d_m)


def test_sequence_log_probs_against_a_token_loop():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 13, generator=gen, dtype=f64)
    labels = torch.randint(0, 13, (3, 7), generator=gen)
    labels[:, :3] = -100
    labels[2, 5:] = -100
    want = []
    for n in range(3):
        total = 0.0
        for t in range(7):
            if labels[n, t] != -100:
                row = logits[n, t]
                total += (row[labels[n, t]] - torch.logsumexp(row, 0)).item()
        want.append(total)
    torch.testing.assert_close(preference.sequence_log_probs(logits, labels),
                               torch.tensor(want, dtype=f64))


def test_z_loss_is_the_weighted_mean_square_of_log_z_with_padding_left_out():
    logits = torch.randn(2, 5, 9, dtype=f64)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, 3:] = True
    log_z = [[math.log(sum(math.exp(v) for v in logits[i, j].tolist())) for j in range(5)]
             for i in range(2)]
    kept = [log_z[i][j] ** 2 for i in range(2) for j in range(5) if not mask[i, j]]
    everything = [v ** 2 for row in log_z for v in row]
    masked = preference.z_loss(logits, 1e-3, mask).item()
    assert masked == pytest.approx(1e-3 * sum(kept) / len(kept))
    assert preference.z_loss(logits, 1e-3).item() == pytest.approx(1e-3 * sum(everything) / 10)


def test_bad_input_says_what_was_expected():
    z = torch.zeros(2, dtype=f64)
    with pytest.raises(ValueError, match="beta must be > 0; got 0"):
        preference.dpo_loss(z, z, z, z, beta=0)
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 0.5\); got 0.5"):
        preference.dpo_loss(z, z, z, z, label_smoothing=0.5)
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 4\) \(N, L\); got \(2, 3\)"):
        preference.sequence_log_probs(torch.randn(2, 4, 5), torch.zeros(2, 3, dtype=torch.long))


# --- the widget -------------------------------------------------------------------------------

@pytest.mark.parametrize("beta", figures.BETAS)
@pytest.mark.parametrize("eps", figures.SMOOTHINGS)
def test_widget_curves_are_dpo_bce_and_the_autograd_gradient(beta, eps):
    loss, grad = figures.dpo_curve(beta, eps)
    m = figures.M_GRID.tolist()
    zeros = [0.0] * len(m)
    np.testing.assert_allclose(loss, reference_dpo(m, zeros, zeros, zeros, beta, eps),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(figures.bce_curve(beta, eps), loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, figures.analytic_gradient(beta, eps), rtol=1e-10, atol=1e-14)


# --- self-checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0])
def test_preference_1_dpo_starts_at_log_2_whatever_beta(beta):
    pc, pr, _, _ = _pairs(1)
    assert preference.dpo_loss(pc, pr, pc, pr, beta=beta).item() == pytest.approx(math.log(2))
    assert math.log(2) == pytest.approx(0.693, abs=5e-4)


def test_preference_2_a_margin_of_10_nats_at_beta_01():
    chosen = torch.tensor([10.0], dtype=f64, requires_grad=True)
    zero = torch.zeros(1, dtype=f64)
    loss = preference.dpo_loss(chosen, zero, zero, zero, beta=0.1)
    (g,) = torch.autograd.grad(loss, chosen)
    assert loss.item() == pytest.approx(0.313, abs=5e-4)
    assert g.item() == pytest.approx(-0.0269, abs=5e-5)


def test_preference_3_a_shift_leaves_cross_entropy_and_moves_log_z_by_the_shift():
    logits, target = torch.randn(4, 100, dtype=f64), torch.randint(0, 100, (4,))
    torch.testing.assert_close(F.cross_entropy(logits + 50, target),
                               F.cross_entropy(logits, target))
    torch.testing.assert_close(torch.logsumexp(logits + 50, -1), torch.logsumexp(logits, -1) + 50)
    assert preference.z_loss(logits + 50) > preference.z_loss(logits)


def test_preference_4_one_log_probability_per_response():
    logits = torch.randn(8, 128, 50, dtype=torch.float32)
    labels = torch.randint(0, 50, (8, 128))
    assert preference.sequence_log_probs(logits, labels).shape == (8,)
