"""The classification chapters' formulas against torch.nn.functional: values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from losslab.losses import classification

torch.manual_seed(0)


def _grad(loss, x):
    (g,) = torch.autograd.grad(loss.sum(), x)
    return g


# --- binary --------------------------------------------------------------------------------

@pytest.mark.parametrize("pos_weight", [None, 0.5, 3.0])
def test_stable_bce_matches_pytorch_in_value_and_gradient(pos_weight):
    logits = (torch.randn(500, dtype=torch.float64) * 20).requires_grad_(True)
    target = torch.rand(500, dtype=torch.float64).round()
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    theirs = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none")
    ours = classification.bce_stable(logits, target, pos_weight=pos_weight)
    torch.testing.assert_close(ours, theirs)
    their_grad = _grad(theirs, logits)
    torch.testing.assert_close(their_grad, classification.bce_logits_grad(
        logits.detach(), target, pos_weight=pos_weight))
    torch.testing.assert_close(_grad(ours, logits), their_grad)


def test_per_label_pos_weight_broadcasts_over_the_last_dimension():
    logits = torch.randn(64, 3, dtype=torch.float64)
    target = torch.rand(64, 3, dtype=torch.float64).round()
    pw = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(
        classification.bce_stable(logits, target, pw),
        F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none"))


def test_stable_bce_stays_finite_where_float32_sigmoid_then_log_fails():
    logits = torch.tensor([-100.0, -30.0, 30.0, 100.0])
    for y in (0.0, 1.0):
        target = torch.full_like(logits, y)
        stable = classification.bce_stable(logits, target)
        assert torch.isfinite(stable).all()
        torch.testing.assert_close(stable, F.binary_cross_entropy_with_logits(
            logits, target, reduction="none"))
        assert not torch.isfinite(classification.bce_naive(logits, target)).all()
    # BCELoss clamps log at -100: a confident wrong logit of 50 reads as loss 100, not 50.
    clamped = F.binary_cross_entropy(torch.sigmoid(torch.tensor([50.0])), torch.zeros(1))
    assert clamped.item() == pytest.approx(100.0)


def test_balanced_pos_weight_is_negatives_over_positives():
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
    torch.testing.assert_close(classification.balanced_pos_weight(target),
                               torch.tensor([3 / 2, 2 / 3]))


# --- multi-class ---------------------------------------------------------------------------

def test_log_softmax_formula_is_stable_and_matches_pytorch():
    logits = torch.tensor([[100.0, 500.0, 1000.0], [1e4, -1e4, 0.0], [1.0, 2.0, 3.0]])
    torch.testing.assert_close(classification.log_softmax_formula(logits),
                               F.log_softmax(logits, dim=1))
    assert torch.isnan(classification.softmax_naive(logits)[0]).all()


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_cross_entropy_formula_and_gradient_match_pytorch(eps):
    logits = torch.randn(40, 6, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 6, (40,))
    theirs = F.cross_entropy(logits, target, label_smoothing=eps, reduction="none")
    torch.testing.assert_close(
        classification.cross_entropy_formula(logits, target, label_smoothing=eps), theirs)
    torch.testing.assert_close(
        _grad(theirs, logits),
        classification.cross_entropy_grad(logits.detach(), target, label_smoothing=eps))


def test_cross_entropy_is_log_softmax_then_nll_and_accepts_soft_targets():
    logits = torch.randn(10, 4, dtype=torch.float64)
    target = torch.randint(0, 4, (10,))
    torch.testing.assert_close(F.cross_entropy(logits, target),
                               F.nll_loss(F.log_softmax(logits, 1), target))
    soft = torch.softmax(torch.randn(10, 4, dtype=torch.float64), 1)
    torch.testing.assert_close(F.cross_entropy(logits, soft),
                               -(soft * F.log_softmax(logits, 1)).sum(1).mean())


def test_class_weight_mean_divides_by_the_targets_weights():
    logits = torch.randn(12, 3, dtype=torch.float64)
    target = torch.randint(0, 3, (12,))
    w = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    per = F.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(F.cross_entropy(logits, target, weight=w),
                               (w[target] * per).sum() / w[target].sum())


@pytest.mark.parametrize("num_classes", [2, 3, 10, 100, 1000])
def test_softmax_before_ce_floor_is_reached_by_one_hot_and_never_beaten(num_classes):
    floor = classification.softmax_before_ce_floor(num_classes)
    assert floor == pytest.approx(math.log(1 + (num_classes - 1) / math.e))
    onehot = F.one_hot(torch.tensor([0]), num_classes).double()
    assert F.cross_entropy(onehot, torch.tensor([0])).item() == pytest.approx(floor)
    logits = torch.randn(2000, num_classes, dtype=torch.float64) * 30
    target = torch.randint(0, num_classes, (2000,))
    mistaken = F.cross_entropy(torch.softmax(logits, 1), target, reduction="none")
    assert mistaken.min().item() >= floor - 1e-12


def test_label_smoothing_best_margin_zeroes_the_gradient():
    c, eps = 5, 0.1
    m = classification.smoothing_best_margin(c, eps)
    logits = torch.zeros(1, c, dtype=torch.float64)
    logits[0, 0] = m
    logits.requires_grad_(True)
    loss = F.cross_entropy(logits, torch.tensor([0]), label_smoothing=eps)
    (g,) = torch.autograd.grad(loss, logits)
    assert g.abs().max().item() < 1e-12
    assert classification.smoothing_best_margin(c, 0.0) == math.inf
    q = classification.smoothed_targets(torch.tensor([2]), c, eps)
    torch.testing.assert_close(q, torch.tensor([[0.02, 0.02, 0.92, 0.02, 0.02]],
                                               dtype=torch.float64))


def test_ignore_index_over_n_c_l_logits_averages_the_kept_positions_only():
    logits = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (3, 7))
    target[0, 4:] = -100
    target[2, 1:] = -100
    loss = F.cross_entropy(logits, target)
    keep = target != -100
    flat_logits = logits.permute(0, 2, 1)[keep]
    expected = classification.cross_entropy_formula(flat_logits, target[keep]).mean()
    torch.testing.assert_close(loss, expected)
    (g,) = torch.autograd.grad(loss, logits)
    assert g.permute(0, 2, 1)[~keep].abs().max().item() == 0.0
    manual = classification.cross_entropy_grad(flat_logits.detach(), target[keep]) / keep.sum()
    torch.testing.assert_close(g.permute(0, 2, 1)[keep], manual)


def test_temperature_scales_the_gradient_by_one_over_t():
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (4,))
    for t in (0.5, 2.0, 4.0):
        loss = F.cross_entropy(logits / t, target, reduction="sum")
        (g,) = torch.autograd.grad(loss, logits)
        expected = (classification.temperature_softmax(logits.detach(), t)
                    - F.one_hot(target, 5)) / t
        torch.testing.assert_close(g, expected)


# --- multi-label ---------------------------------------------------------------------------

def test_multilabel_predict_uses_per_label_thresholds():
    logits = torch.tensor([[0.0, 1.0, -1.0]])
    got = classification.multilabel_predict(logits, torch.tensor([0.6, 0.7, 0.2]))
    assert got.tolist() == [[False, True, True]]
