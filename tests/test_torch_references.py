"""Every formula the course writes, against torch.nn.functional for every reduction and option,
and against the reference implementations PyTorch keeps in torch/testing/_internal/common_nn.py.
Analytic gradients are checked against autograd, including those the new widgets plot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close
from torch.testing._internal import common_nn

from losslab.figures import margins as margin_figures
from losslab.figures import probabilistic as prob_figures
from losslab.figures import sequences as seq_figures
from losslab.losses import beyond, classification, margins, probabilistic, regression, sequences

f64 = torch.float64
REDUCTIONS = ["none", "mean", "sum"]
# The references this file uses; all exist in torch 2.13's common_nn (checked below).
REFERENCES = ["ctcloss_reference", "multimarginloss_reference", "marginrankingloss_reference",
              "hingeembeddingloss_reference", "softmarginloss_reference",
              "multilabelmarginloss_reference", "nllloss_reference", "nlllossNd_reference",
              "kldivloss_reference", "cosineembeddingloss_reference",
              "tripletmarginloss_reference", "linear_cross_entropy_loss_reference",
              "cross_entropy_loss_reference", "huberloss_reference", "smoothl1loss_reference"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=gen(seed), dtype=f64)


def signs(n, seed=1):
    return torch.where(torch.rand(n, generator=gen(seed)) < 0.5, 1.0, -1.0).to(f64)


def test_the_references_used_here_exist_in_the_installed_torch():
    missing = [name for name in REFERENCES if not hasattr(common_nn, name)]
    assert missing == [], f"common_nn in torch {torch.__version__} lacks {missing}"
    for name in ("CTCLoss", "MultiMarginLoss", "MarginRankingLoss", "NLLLoss",
                 "LinearCrossEntropyLoss"):
        assert name in common_nn.loss_reference_fns


# --- probabilistic --------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("spatial", [False, True])
def test_nll_formula(reduction, weighted, spatial):
    shape = (6, 4, 3) if spatial else (6, 4)
    log_probs = randn(*shape).log_softmax(dim=1)
    target = torch.randint(0, 4, (6, 3) if spatial else (6,), generator=gen(2))
    # nlllossNd_reference indexes the input before it checks ignore_index, so the spatial case
    # ignores a real class instead of the default -100.
    ignore = 3 if spatial else -100
    target.view(-1)[1] = ignore
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=f64) if weighted else None
    kw = {"weight": weight, "ignore_index": ignore, "reduction": reduction}
    ours = probabilistic.nll_formula(log_probs, target, **kw)
    assert_close(ours, F.nll_loss(log_probs, target, **kw))
    if spatial:
        ref = common_nn.nlllossNd_reference(log_probs, target, **kw)
    else:
        ref = common_nn.nllloss_reference(log_probs, target, **kw)
    assert_close(ours, ref.to(f64))


def test_nll_gradient_is_weighted_softmax_minus_onehot():
    logits = randn(5, 4).requires_grad_(True)
    target = torch.tensor([0, 3, 1, 1, 2])
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=f64)
    loss = F.nll_loss(logits.log_softmax(1), target, weight=weight, reduction="sum")
    (grad,) = torch.autograd.grad(loss, logits)
    analytic = weight[target, None] * (logits.detach().softmax(1) - F.one_hot(target, 4))
    assert_close(grad, analytic)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input,full", list(itertools.product([True, False], repeat=2)))
def test_poisson_formula_and_gradient(reduction, log_input, full):
    rate = torch.rand(12, generator=gen(3), dtype=f64) * 5 + 0.05
    counts = torch.poisson(torch.full((12,), 2.5, dtype=f64), generator=gen(4))
    inp = (rate.log() if log_input else rate).requires_grad_(True)
    theirs = F.poisson_nll_loss(inp, counts, log_input=log_input, full=full, reduction=reduction)
    ours = probabilistic.poisson_nll_formula(inp, counts, log_input=log_input, full=full,
                                             reduction=reduction)
    assert_close(ours, theirs)
    (grad,) = torch.autograd.grad(theirs.sum(), inp)
    scale = {"mean": 1 / 12, "sum": 1.0, "none": 1.0}[reduction]
    assert_close(grad, scale * probabilistic.poisson_nll_grad(inp.detach(), counts, log_input))


def test_stirling_term_approximates_log_factorial_above_one():
    counts = torch.tensor([0.0, 1.0, 2.0, 10.0, 100.0], dtype=f64)
    term = probabilistic.stirling_term(counts)
    assert term[:2].tolist() == [0.0, 0.0]
    assert_close(term[2:], torch.lgamma(counts[2:] + 1), atol=0.05, rtol=0.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("eps", [1e-6, 0.3])
@pytest.mark.parametrize("var_shape", [(6, 3), (6, 1), (6,)])
def test_gaussian_formula_and_gradients(reduction, full, eps, var_shape):
    mean = randn(6, 3).requires_grad_(True)
    target = randn(6, 3, seed=5)
    var = (torch.rand(*var_shape, generator=gen(6), dtype=f64) * 2).requires_grad_(True)
    theirs = F.gaussian_nll_loss(mean, target, var, full=full, eps=eps, reduction=reduction)
    ours = probabilistic.gaussian_nll_formula(mean, target, var, full=full, eps=eps,
                                              reduction=reduction)
    assert_close(ours, theirs)
    g_theirs = torch.autograd.grad(theirs.sum(), (mean, var))
    g_ours = torch.autograd.grad(ours.sum(), (mean, var))
    assert_close(g_ours[0], g_theirs[0])
    assert_close(g_ours[1], g_theirs[1])


def test_gaussian_analytic_gradients_and_the_clamp_that_autograd_does_not_see():
    mean, target = randn(5), randn(5, seed=7)
    var = torch.tensor([1e-9, 0.2, 0.5, 1.0, 3.0], dtype=f64, requires_grad=True)
    m = mean.clone().requires_grad_(True)
    g_mean, g_var = torch.autograd.grad(
        F.gaussian_nll_loss(m, target, var, reduction="sum"), (m, var))
    a_mean, a_var = probabilistic.gaussian_nll_grads(mean, target, var.detach())
    assert_close(g_mean, a_mean)
    assert_close(g_var, a_var)
    assert g_var[0] != 0  # below eps the loss is flat, but the gradient is the one at eps


def test_probabilistic_widgets_plot_the_analytic_gradients():
    fig = prob_figures.poisson_explorer()
    auto = fig.curves["gradient in the input (autograd)"]["autograd"][1]
    analytic = fig.curves["gradient in the input (autograd)"]["exp(θ) − y, or 1 − y / λ"][1]
    np.testing.assert_allclose(auto, analytic, rtol=1e-9, atol=1e-9)
    var = prob_figures.VARIANCES
    for error, eps in itertools.product(prob_figures.ERRORS, prob_figures.EPSILONS):
        _, grad = prob_figures.gaussian_curve(error, eps, False)
        want = probabilistic.gaussian_nll_grads(torch.full_like(var, error), torch.zeros_like(var),
                                                var, eps=eps)[1]
        np.testing.assert_allclose(grad, want.numpy(), rtol=1e-9, atol=1e-9)
    z0 = prob_figures.NLL_Z
    _, grad = prob_figures.nll_curve("log_softmax", 1.0, "sum")
    logits = prob_figures.NLL_LOGITS.expand(len(z0), 3, 4).clone()
    logits[:, 0, 0] = z0
    np.testing.assert_allclose(grad, (logits[:, 0].softmax(-1)[:, 0] - 1).numpy(), atol=1e-12)


def test_a_predicted_variance_follows_the_noise():
    x, y = probabilistic.heteroscedastic_data()
    model = probabilistic.fit_mean_and_variance(x, y)
    with torch.no_grad():
        _, var = model(torch.tensor([[-2.0], [0.0], [2.0]]))
    std = var.sqrt().squeeze(1)
    assert std[1] < 0.3 and std[0] > 0.6 and std[2] > 0.6, std


# --- margins ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.7])
def test_margin_ranking_and_hinge_embedding_and_soft_margin(reduction, margin):
    x1, x2, y = randn(10), randn(10, seed=8), signs(10)
    ours = margins.margin_ranking_formula(x1, x2, y, margin=margin, reduction=reduction)
    assert_close(ours, F.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction))
    assert_close(ours, common_nn.marginrankingloss_reference(x1, x2, y, margin, reduction))
    dist = x1.abs() * 2
    ours = margins.hinge_embedding_formula(dist, y, margin=margin + 0.5, reduction=reduction)
    assert_close(ours, F.hinge_embedding_loss(dist, y, margin=margin + 0.5, reduction=reduction))
    assert_close(ours, common_nn.hingeembeddingloss_reference(dist, y, margin + 0.5, reduction))
    ours = margins.soft_margin_formula(x1, y, reduction=reduction)
    assert_close(ours, F.soft_margin_loss(x1, y, reduction=reduction))
    assert_close(ours, common_nn.softmarginloss_reference(x1, y, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [0.5, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin(reduction, p, margin, weighted):
    x, y = randn(7, 5), torch.randint(0, 5, (7,), generator=gen(9))
    w = torch.rand(5, generator=gen(10), dtype=f64) + 0.5 if weighted else None
    ours = margins.multi_margin_formula(x, y, p=p, margin=margin, weight=w, reduction=reduction)
    assert_close(ours, F.multi_margin_loss(x, y, p=p, margin=margin, weight=w,
                                           reduction=reduction))
    assert_close(ours, common_nn.multimarginloss_reference(x, y, p, margin, w, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_with_its_index_targets(reduction):
    x = randn(5, 4)
    # A -1 ends each row's labels; a row may list a class twice or list none at all.
    y = torch.tensor([[3, 0, -1, 1], [0, 1, 2, 3], [1, -1, 0, 0], [-1, 0, 0, 0], [2, 2, -1, 0]])
    ours = margins.multilabel_margin_formula(x, y, reduction=reduction)
    assert_close(ours, F.multilabel_margin_loss(x, y, reduction=reduction))
    assert_close(ours, common_nn.multilabelmarginloss_reference(x, y, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_multilabel_soft_margin_is_bce_with_logits_over_labels(reduction, weighted):
    x = randn(6, 4) * 3
    y = (torch.rand(6, 4, generator=gen(11)) < 0.5).to(f64)
    w = torch.tensor([1.0, 0.5, 2.0, 1.0], dtype=f64) if weighted else None
    ours = margins.multilabel_soft_margin_formula(x, y, weight=w, reduction=reduction)
    assert_close(ours, F.multilabel_soft_margin_loss(x, y, weight=w, reduction=reduction))
    bce = F.binary_cross_entropy_with_logits(x, y, weight=w, reduction="none").mean(dim=1)
    assert_close(ours, probabilistic.reduce(bce, reduction))
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.multilabel_soft_margin_loss(xg, y, reduction="sum"), xg)
    assert_close(g, (torch.sigmoid(x) - y) / 4)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("distance", ["default", "cosine", "l1"])
def test_triplet_with_distance(reduction, swap, distance):
    a, p, n = randn(8, 3), randn(8, 3, seed=12), randn(8, 3, seed=13)
    d = {"default": None, "cosine": margins.cosine_distance,
         "l1": lambda u, v: (u - v).abs().sum(-1)}[distance]
    ours = margins.triplet_with_distance_formula(a, p, n, d, margin=0.5, swap=swap,
                                                 reduction=reduction)
    assert_close(ours, F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=d, margin=0.5, swap=swap, reduction=reduction))
    if distance == "default":
        ref = common_nn.tripletmarginloss_reference(a, p, n, margin=0.5, swap=swap,
                                                    reduction=reduction)
        assert_close(ours, ref)


def test_margin_widgets_plot_the_analytic_gradients():
    fig = margin_figures.pair_losses()
    x = torch.linspace(-3.0, 3.0, 121, dtype=f64)
    grads = fig.curves["gradient (autograd)"]
    margins_ = margin_figures.MARGINS
    for i, margin in enumerate(margins_):
        for j, y in enumerate([-1.0, 1.0]):
            ranking = grads["MarginRankingLoss (x1 − x2 = x)"][1][i, j]
            # At the kink itself autograd takes the active side (clamp passes the gradient).
            active = (-y * x + margin) >= 0
            np.testing.assert_allclose(ranking, np.where(active, -y, 0.0), atol=1e-12)
            soft = grads["SoftMarginLoss"][1][j]
            np.testing.assert_allclose(soft, (-y * torch.sigmoid(-y * x)).numpy(), atol=1e-12)
    for p, margin, w0 in itertools.product([1, 2], [0.5, 1.0, 2.0], [0.5, 1.0, 2.0]):
        _, grad = margin_figures.multi_margin_curves(p, margin, w0)["MultiMarginLoss"]
        x_true = margin_figures.TRUE_SCORE[:, None]
        gap = (margin - x_true + margin_figures.OTHER_SCORES).clamp(min=0)
        analytic = -w0 * (p * gap ** (p - 1) * (gap > 0)).sum(dim=1) / 4
        np.testing.assert_allclose(grad, analytic.numpy(), atol=1e-12)


def test_multilabel_and_triplet_widgets_plot_the_analytic_gradients():
    for moved, labels in itertools.product(range(4), margin_figures.TARGET_SETS):
        curves = margin_figures.multilabel_curves(moved, labels)
        _, grad = curves["MultiLabelSoftMarginLoss (multi-hot)"]
        y = float(moved in margin_figures.TARGET_SETS[labels])
        want = (torch.sigmoid(margin_figures.MOVED) - y) / 4
        np.testing.assert_allclose(grad, want.numpy(), atol=1e-12)
    theta = margin_figures.ANGLES
    d_pos = 2 * np.sin(0.3)
    for margin in (0.25, 0.5, 1.0):
        _, grad = margin_figures.triplet_curves("euclidean", margin, False)[
            "TripletMarginWithDistanceLoss"]
        # d(a, n) = 2 sin(θ / 2) on the unit circle, so d loss / dθ = -cos(θ / 2) while active.
        active = d_pos - 2 * torch.sin(theta / 2) + margin > 0
        want = torch.where(active, -torch.cos(theta / 2), torch.zeros_like(theta))
        # At θ = 0 the negative sits on the anchor, where the distance has no derivative.
        np.testing.assert_allclose(grad[1:], want[1:].numpy(), atol=1e-5)
        _, grad = margin_figures.triplet_curves("cosine", margin, False)[
            "TripletMarginWithDistanceLoss"]
        # cosine distance 1 - cos θ: d loss / dθ = -sin θ while active.
        active = (1 - np.cos(0.6)) - (1 - torch.cos(theta)) + margin > 0
        want = torch.where(active, -torch.sin(theta), torch.zeros_like(theta))
        np.testing.assert_allclose(grad, want.numpy(), atol=1e-9)


# --- sequences -------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("concatenated", [False, True])
def test_ctc_formula(reduction, zero_infinity, concatenated):
    log_probs = randn(10, 4, 5).log_softmax(dim=2)
    padded = torch.tensor([[1, 1, 2, 3], [4, 2, 0, 0], [3, 3, 3, 3], [2, 0, 0, 0]])
    input_lengths, target_lengths = [10, 8, 6, 3], [4, 2, 4, 1]  # the third cannot fit
    targets = (torch.cat([padded[i, :s] for i, s in enumerate(target_lengths)])
               if concatenated else padded)
    theirs = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction=reduction,
                        zero_infinity=zero_infinity)
    ours = sequences.ctc_formula(log_probs, padded, input_lengths, target_lengths,
                                 reduction=reduction, zero_infinity=zero_infinity)
    assert_close(ours, theirs)
    if not zero_infinity:
        ref = common_nn.ctcloss_reference(log_probs, targets, input_lengths, target_lengths,
                                          reduction=reduction)
        assert_close(ours, ref)


def forward_backward_posterior(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The CTC alignment posterior per frame and symbol, from forward and backward variables."""
    log_probs = logits.log_softmax(dim=1)
    ext = sequences.extended_label(target)
    alpha = sequences.ctc_log_alpha(log_probs, target)
    # The backward variables are the forward ones of the reversed sequence and label.
    beta = sequences.ctc_log_alpha(log_probs.flip(0), target.flip(0)).flip(0).flip(1)
    log_z = torch.logsumexp(alpha[-1, -2:], dim=0)
    per_position = (alpha + beta - log_probs[:, ext] - log_z).exp()
    out = torch.zeros_like(log_probs)
    return out.index_add(1, ext, per_position)


@pytest.mark.parametrize("target", list(seq_figures.CTC_TARGETS.values()))
@pytest.mark.parametrize("bias", [-2.0, 0.0, 3.0])
def test_the_ctc_widget_posterior_matches_forward_backward(target, bias):
    softmax, posterior = seq_figures.ctc_frame(target, bias)
    want = forward_backward_posterior(seq_figures.biased(bias), torch.tensor(target))
    np.testing.assert_allclose(posterior, want.numpy(), atol=1e-10)
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0, atol=1e-10)
    loss, grad = seq_figures.ctc_over_bias(target)
    i = int(np.argmin(np.abs(seq_figures.BIAS_GRID.numpy() - bias)))
    # d loss / d blank bias = sum over frames of (softmax - posterior) for the blank.
    _, at_grid = seq_figures.ctc_frame(target, float(seq_figures.BIAS_GRID[i]))
    probs = seq_figures.biased(float(seq_figures.BIAS_GRID[i])).softmax(1).numpy()
    assert grad[i] == pytest.approx((probs[:, 0] - at_grid[:, 0]).sum(), abs=1e-9)


@pytest.mark.parametrize("div_value", [1.0, 2.0, 4.0])
def test_adaptive_log_prob_written_out(div_value):
    torch.manual_seed(0)
    module = nn.AdaptiveLogSoftmaxWithLoss(32, 30, [5, 15], div_value=div_value).to(f64)
    h = randn(9, 32)
    y = torch.tensor([0, 4, 5, 14, 15, 29, 2, 20, 10])
    ours = sequences.adaptive_log_prob(module, h, y)
    out = module(h, y)
    assert_close(ours, out.output)
    assert_close(-ours.mean(), out.loss)
    assert_close(ours, module.log_prob(h).gather(1, y[:, None]).squeeze(1))


def test_adaptive_cost_counts_the_layers_multiply_adds():
    torch.manual_seed(0)
    module = nn.AdaptiveLogSoftmaxWithLoss(64, 1000, [100, 400], div_value=4.0)
    weights = sum(p.numel() for p in module.parameters())
    assert sequences.adaptive_cost(64, [100, 400], 1000, 4.0) == weights


# --- the formulas of the earlier chapters, against PyTorch's references ---------------------------

@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean"])
def test_kl_formula(reduction):
    log_q, p = randn(6, 5).log_softmax(1), randn(6, 5, seed=14).softmax(1)
    per_row = beyond.kl_formula(log_q, p)
    ours = {"batchmean": per_row.mean(), "sum": per_row.sum(), "mean": per_row.sum() / 30}
    assert_close(ours[reduction], common_nn.kldivloss_reference(log_q, p, reduction))
    assert_close(ours[reduction], F.kl_div(log_q, p, reduction=reduction))


def test_embedding_formulas():
    a, p, n = randn(8, 4), randn(8, 4, seed=15), randn(8, 4, seed=16)
    assert_close(beyond.triplet_formula(a, p, n, margin=0.7),
                 common_nn.tripletmarginloss_reference(a, p, n, margin=0.7, reduction="none"))
    y = signs(8)
    assert_close(beyond.cosine_embedding_formula(a, p, y, margin=0.2),
                 common_nn.cosineembeddingloss_reference(a, p, y, margin=0.2, reduction="none"))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_and_linear_cross_entropy_formulas(smoothing):
    logits, y = randn(7, 5), torch.randint(0, 5, (7,), generator=gen(17))
    ours = classification.cross_entropy_formula(logits, y, label_smoothing=smoothing)
    assert_close(ours, common_nn.cross_entropy_loss_reference(
        logits, y, reduction="none", label_smoothing=smoothing))
    h, w = randn(7, 3, seed=18), randn(5, 3, seed=19)
    linear = classification.cross_entropy_formula(h @ w.T, y, label_smoothing=smoothing).mean()
    assert_close(linear, common_nn.linear_cross_entropy_loss_reference(
        h, w, y, label_smoothing=smoothing))
    assert_close(linear, F.linear_cross_entropy(h, w, y, label_smoothing=smoothing))


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_and_smooth_l1_formulas(delta):
    x, y = randn(20) * 3, randn(20, seed=20)
    assert_close(regression.huber_formula(x, y, delta),
                 common_nn.huberloss_reference(x, y, "none", delta))
    assert_close(regression.smooth_l1_formula(x, y, delta),
                 common_nn.smoothl1loss_reference(x, y, "none", delta))
