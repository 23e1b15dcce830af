"""The dense-prediction chapter: its losses against MONAI and PyTorch, its widget against
autograd, and its self-check answers.

MONAI's ``DiceLoss``, ``TverskyLoss`` and ``DiceCELoss`` are the references (MONAI is pinned as
a test-only dependency in requirements.txt). MONAI takes the target as ``(N, 1, H, W)`` class
indices with ``to_onehot_y=True`` and the logits with ``softmax=True``; the course's functions
take probabilities and a one-hot mask. Computed in float64.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from monai.losses import DiceCELoss, DiceLoss, TverskyLoss

from losslab.figures import dense as figures
from losslab.losses import dense

f64 = torch.float64


def _case(seed: int, n: int = 2, c: int = 3, empty_class: bool = False):
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, c, 8, 9, generator=gen, dtype=f64)
    target = torch.randint(0, c, (n, 8, 9), generator=gen)
    if empty_class:
        target[0][target[0] == 2] = 1          # class 2 absent from the first image
    return logits, target


def _monai(loss_cls, logits, target, reduction, **kw):
    out = loss_cls(softmax=True, to_onehot_y=True, reduction=reduction, **kw)(
        logits, target[:, None])
    return out.flatten(1) if reduction == "none" and out.ndim > 2 else out


OPTIONS = [dict(include_background=ib, batch=b) for ib in (True, False) for b in (False, True)]


def OPTION_IDS(o):  # noqa: N802 - a pytest ids callable, named like the list it labels
    return f"bg{o['include_background']}-batch{o['batch']}"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
@pytest.mark.parametrize("smooth", [1e-5, 1.0])
def test_soft_dice_matches_monai(reduction, options, smooth):
    logits, target = _case(1, empty_class=True)
    ours = dense.dice_from_logits(logits, target, smooth_nr=smooth, smooth_dr=smooth,
                                  reduction=reduction, **options)
    theirs = _monai(DiceLoss, logits, target, reduction, smooth_nr=smooth, smooth_dr=smooth,
                    **options)
    if reduction == "none" and options["batch"]:
        theirs = theirs.reshape(-1)
    torch.testing.assert_close(ours, theirs.to(f64), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.3, 0.7), (0.7, 0.3), (1.0, 1.0)])
@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
def test_tversky_matches_monai(reduction, alpha, beta, options):
    logits, target = _case(2, empty_class=True)
    probs, mask = logits.softmax(1), dense.one_hot(target, 3).to(f64)
    ours = dense.tversky_loss(probs, mask, alpha=alpha, beta=beta, reduction=reduction, **options)
    theirs = _monai(TverskyLoss, logits, target, reduction, alpha=alpha, beta=beta, **options)
    if reduction == "none" and options["batch"]:
        theirs = theirs.reshape(-1)
    torch.testing.assert_close(ours, theirs.to(f64), rtol=1e-9, atol=1e-12)


def test_dice_and_tversky_gradients_match_monai():
    logits, target = _case(3)
    for ours_fn, theirs_fn in (
        (lambda z: dense.dice_from_logits(z, target, include_background=False),
         lambda z: _monai(DiceLoss, z, target, "mean", include_background=False)),
        (lambda z: dense.tversky_loss(z.softmax(1), dense.one_hot(target, 3).to(f64), 0.3, 0.7),
         lambda z: _monai(TverskyLoss, z, target, "mean", alpha=0.3, beta=0.7)),
    ):
        a, b = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
        (ga,) = torch.autograd.grad(ours_fn(a), a)
        (gb,) = torch.autograd.grad(theirs_fn(b), b)
        torch.testing.assert_close(ga, gb, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("ignore_index", [255, -100])
@pytest.mark.parametrize("include_background", [True, False])
def test_dice_leaves_void_pixels_out_as_monai_does(ignore_index, include_background):
    logits, target = _case(6)
    target[:, :3] = ignore_index
    ours = dense.dice_from_logits(logits, target, ignore_index=ignore_index,
                                  include_background=include_background)
    theirs = _monai(DiceLoss, logits, target, "mean", ignore_index=ignore_index,
                    include_background=include_background)
    torch.testing.assert_close(ours, theirs.to(f64), rtol=1e-9, atol=1e-12)
    # and the module from choose_loss leaves them out of both terms
    module = dense.CEDiceLoss(ignore_index=ignore_index, include_background=include_background)
    torch.testing.assert_close(module(logits, target), F.cross_entropy(
        logits, target, ignore_index=ignore_index) + ours)


@pytest.mark.parametrize("lambdas", [(1.0, 1.0), (0.5, 2.0)])
def test_ce_plus_dice_matches_monai_dice_ce(lambdas):
    logits, target = _case(4)
    lambda_ce, lambda_dice = lambdas
    ours = dense.ce_dice_loss(logits, target, lambda_ce=lambda_ce, lambda_dice=lambda_dice)
    theirs = DiceCELoss(softmax=True, to_onehot_y=True, lambda_ce=lambda_ce,
                        lambda_dice=lambda_dice)(logits, target[:, None])
    torch.testing.assert_close(ours, theirs.to(f64), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 255])
def test_pixel_cross_entropy_formula_matches_pytorch(weighted, ignore_index):
    logits, target = _case(5)
    target[:, :2] = ignore_index
    weight = torch.tensor([0.2, 1.0, 3.0], dtype=f64) if weighted else None
    torch.testing.assert_close(
        dense.pixel_cross_entropy_formula(logits, target, weight, ignore_index),
        F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index))


def test_bad_input_says_what_was_expected():
    with pytest.raises(ValueError, match="int64 class indices; got torch.float32"):
        dense.one_hot(torch.zeros(1, 2, 2), 2)
    with pytest.raises(ValueError, match=r"probabilities \(1, 2, 4, 4\) and mask \(1, 3, 4, 4\)"):
        dense.soft_dice_loss(torch.rand(1, 2, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        dense.soft_dice_loss(torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4), reduction="avg")


# --- the widget -------------------------------------------------------------------------------

@pytest.mark.parametrize("side", [2, 8, 0])
@pytest.mark.parametrize("smooth", figures.SMOOTHS)
def test_widget_curves_are_each_image_loss_and_its_autograd_derivative(side, smooth):
    """Per point, one image: the batched computation of the figure equals one image at a time,
    and the gradient equals a central difference of the loss."""
    curves = figures.curves(side, smooth)
    target, moving = figures.scene(side)
    for k in (0, 40, 60, 100):
        z = figures.Z_GRID[k:k + 1].clone().requires_grad_(True)
        logits = figures.logits_for(z, moving)
        ce = F.cross_entropy(logits, target)
        dice = _monai(DiceLoss, logits, target, "mean", include_background=False,
                      smooth_nr=smooth, smooth_dr=smooth)
        for key, value in (("ce", ce), ("dice", dice), ("both", ce + dice)):
            (g,) = torch.autograd.grad(value, z, retain_graph=True)
            assert curves[key][0][k] == pytest.approx(value.item(), rel=1e-9, abs=1e-12)
            assert curves[key][1][k] == pytest.approx(g.item(), rel=1e-7, abs=1e-12)


def test_cross_entropys_gradient_scales_with_the_object_and_dices_does_not():
    at_zero = figures.grid_index(0.0)
    small, large = figures.curves(2, 1e-5), figures.curves(8, 1e-5)
    assert large["ce"][1][at_zero] / small["ce"][1][at_zero] == pytest.approx(16.0)
    assert 0.2 < large["dice"][1][at_zero] / small["dice"][1][at_zero] < 5


def test_dice_on_an_empty_mask_is_flat_unless_smoothed():
    flat, smoothed = figures.curves(0, 1e-5), figures.curves(0, 1.0)
    assert flat["dice"][0].min() > 0.999
    assert np.abs(flat["dice"][1]).max() < 1e-4
    assert np.abs(smoothed["dice"][1]).max() > 0.05


# --- self-checks ------------------------------------------------------------------------------

def test_dense_1_reduction_none_gives_one_loss_per_pixel():
    out = F.cross_entropy(torch.randn(4, 3, 32, 32), torch.randint(0, 3, (4, 32, 32)),
                          reduction="none")
    assert out.shape == (4, 32, 32)


def test_dense_2_label_255_without_ignore_index_is_an_index_error_on_the_cpu():
    target = torch.randint(0, 3, (1, 4, 4))
    target[0, 0, 0] = 255
    with pytest.raises(IndexError, match="Target 255 is out of bounds"):
        F.cross_entropy(torch.randn(1, 3, 4, 4), target)
    assert F.cross_entropy(torch.randn(1, 3, 4, 4), target, ignore_index=255).isfinite()


def test_dense_3_dice_of_tiny_predictions_on_an_empty_mask_is_about_1_and_flat():
    logit = torch.full((1, 1, 16, 16), float(torch.logit(torch.tensor(0.001, dtype=f64))),
                       dtype=f64, requires_grad=True)
    probs = torch.cat([1 - torch.sigmoid(logit), torch.sigmoid(logit)], dim=1)
    mask = torch.zeros(1, 2, 16, 16, dtype=f64)
    mask[:, 0] = 1
    loss = dense.soft_dice_loss(probs, mask, include_background=False)
    assert loss.item() == pytest.approx(1 - 1e-5 / (0.256 + 1e-5), rel=1e-9)
    assert loss.item() == pytest.approx(0.99996, abs=5e-6)
    # the derivative in the total foreground probability: 1e-5 / (0.256 + 1e-5)**2 ≈ 1.5e-4
    sum_p = probs[:, 1].sum()
    (g,) = torch.autograd.grad(loss, probs)
    assert g[0, 1, 0, 0].item() == pytest.approx(1e-5 / (sum_p.item() + 1e-5) ** 2, rel=1e-9)
    assert g[0, 1, 0, 0].item() < 2e-4


def test_dense_4_a_weighted_mean_divides_by_the_weight_sum():
    logits, target = torch.randn(2, 3, 5, 5, dtype=f64), torch.randint(0, 3, (2, 5, 5))
    weight = torch.tensor([0.2, 1.0, 3.0], dtype=f64)
    total = F.cross_entropy(logits, target, weight=weight, reduction="sum")
    assert F.cross_entropy(logits, target, weight=weight).item() == pytest.approx(
        (total / weight[target].sum()).item())
    assert F.cross_entropy(logits, target, weight=weight).item() != pytest.approx(
        (total / target.numel()).item())
