"""Focal loss, distillation, multi-task and metric-learning formulas against PyTorch."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from losslab.losses import beyond

torch.manual_seed(0)


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


@pytest.mark.parametrize("shape", [(50,), (20, 4)])
def test_focal_with_gamma_zero_is_alpha_weighted_bce_in_value_and_gradient(shape):
    logits = (torch.randn(shape, dtype=torch.float64) * 4).requires_grad_(True)
    target = torch.rand(shape, dtype=torch.float64).round()
    alpha_t = 0.3 * target + 0.7 * (1 - target)
    focal = beyond.sigmoid_focal_loss(logits, target, alpha=0.3, gamma=0.0, reduction="sum")
    weighted = (alpha_t * _bce(logits, target)).sum()
    torch.testing.assert_close(focal, weighted)
    g_focal = torch.autograd.grad(focal, logits)[0]
    g_weighted = torch.autograd.grad(weighted, logits)[0]
    torch.testing.assert_close(g_focal, g_weighted)
    plain = beyond.sigmoid_focal_loss(logits, target, alpha=None, gamma=0.0, reduction="none")
    torch.testing.assert_close(plain, _bce(logits, target))


def test_focal_matches_the_definition_and_alpha_changes_the_loss():
    logits = torch.randn(200, dtype=torch.float64) * 3
    target = torch.rand(200, dtype=torch.float64).round()
    p = torch.sigmoid(logits)
    p_t = torch.where(target == 1, p, 1 - p)
    alpha_t = torch.where(target == 1, 0.25, 0.75)
    definition = -(alpha_t * (1 - p_t) ** 2 * torch.log(p_t))
    got = beyond.sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none")
    torch.testing.assert_close(got, definition)
    module = beyond.FocalLoss(alpha=0.25, gamma=2.0)
    unweighted = beyond.FocalLoss(alpha=None, gamma=2.0)
    assert module(logits, target).item() != pytest.approx(unweighted(logits, target).item())
    torch.testing.assert_close(module(logits, target), definition.mean())


def test_focal_stays_finite_at_extreme_logits_with_finite_gradients():
    logits = torch.tensor([-100.0, 100.0, -100.0, 100.0], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    loss = beyond.sigmoid_focal_loss(logits, target, reduction="sum")
    (g,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.isfinite(g).all()
    assert loss.item() == pytest.approx(2 * 100.0 * 0.5, rel=1e-5)  # alpha_t 0.25 + 0.75


def test_focal_module_rejects_bad_settings():
    with pytest.raises(ValueError, match="alpha"):
        beyond.FocalLoss(alpha=2.0)
    with pytest.raises(ValueError, match="reduction"):
        beyond.FocalLoss(reduction="avg")


def test_kl_div_takes_log_probabilities_and_batchmean_is_the_kl_per_example():
    student = torch.randn(6, 4, dtype=torch.float64)
    teacher = torch.randn(6, 4, dtype=torch.float64)
    log_q = F.log_softmax(student, 1)
    p = F.softmax(teacher, 1)
    kl = beyond.kl_formula(log_q, p)
    torch.testing.assert_close(F.kl_div(log_q, p, reduction="batchmean"), kl.mean())
    torch.testing.assert_close(F.kl_div(F.log_softmax(teacher, 1), F.log_softmax(student, 1)
                                        .exp(), reduction="batchmean"),
                               beyond.kl_formula(F.log_softmax(teacher, 1), F.softmax(student, 1))
                               .mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.testing.assert_close(F.kl_div(log_q, p, reduction="mean"), kl.mean() / 4)
    assert F.kl_div(log_q, p, log_target=False, reduction="batchmean").item() >= 0


def test_distillation_loss_is_t_squared_kl_and_its_gradient_matches():
    s = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    t_logits = torch.randn(5, 7, dtype=torch.float64)
    temp = 3.0
    loss = beyond.distillation_loss(s, t_logits, temp)
    q = F.softmax(s.detach() / temp, 1)
    p = F.softmax(t_logits / temp, 1)
    torch.testing.assert_close(loss, temp**2 * beyond.kl_formula(torch.log(q), p).mean())
    (g,) = torch.autograd.grad(loss, s)
    # d/dz_s of T² KL(p || softmax(z_s / T)) / N = T (q - p) / N
    torch.testing.assert_close(g, temp * (q - p) / 5)


def test_uncertainty_weighting_optimum_is_log_of_each_loss():
    losses = [torch.tensor(4.0), torch.tensor(0.5)]
    weigh = beyond.UncertaintyWeighting(2)
    with torch.no_grad():
        weigh.log_vars.copy_(torch.log(torch.tensor([4.0, 0.5])))
    total = weigh(losses)
    (g,) = torch.autograd.grad(total, weigh.log_vars)
    assert g.abs().max().item() < 1e-6


def test_weighted_sum_reports_parts_and_requires_every_task():
    total, parts = beyond.WeightedSum({"a": 2.0, "b": 0.5})({"a": torch.tensor(1.0),
                                                            "b": torch.tensor(4.0)})
    assert total.item() == pytest.approx(4.0) and parts["b"].item() == pytest.approx(2.0)
    with pytest.raises(KeyError, match="b"):
        beyond.WeightedSum({"a": 1.0, "b": 1.0})({"a": torch.tensor(1.0)})


def test_triplet_and_cosine_embedding_formulas_match_pytorch():
    a, p, n = (torch.randn(40, 6, dtype=torch.float64, requires_grad=True) for _ in range(3))
    theirs = nn.TripletMarginLoss(margin=0.5, reduction="none")(a, p, n)
    ours = beyond.triplet_formula(a, p, n, margin=0.5)
    torch.testing.assert_close(ours, theirs)
    g_t = torch.autograd.grad(theirs.sum(), a, retain_graph=True)[0]
    g_o = torch.autograd.grad(ours.sum(), a)[0]
    torch.testing.assert_close(g_o, g_t)
    x1, x2 = torch.randn(40, 6, dtype=torch.float64), torch.randn(40, 6, dtype=torch.float64)
    y = torch.where(torch.rand(40) < 0.5, 1.0, -1.0).double()
    torch.testing.assert_close(
        beyond.cosine_embedding_formula(x1, x2, y, margin=0.1),
        nn.CosineEmbeddingLoss(margin=0.1, reduction="none")(x1, x2, y))
