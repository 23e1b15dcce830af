"""Numbers and small quantitative statements typed in the chapters' prose, checked here.

Each test names the chapter and quotes the statement it checks. Numbers a cell computes
are glued into the prose instead and need no test.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from losslab.losses import fitting


def test_regression_one_error_of_10_costs_as_much_as_a_hundred_errors_of_1():
    one_big = F.mse_loss(torch.tensor([10.0]), torch.zeros(1), reduction="sum")
    many_small = F.mse_loss(torch.ones(100), torch.zeros(100), reduction="sum")
    assert one_big.item() == many_small.item() == 100.0


def test_regression_the_outlier_data_lie_on_a_line_of_slope_2():
    x, y = fitting.line_data()
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    slope, _ = torch.linalg.lstsq(design, y[:, None]).solution[:, 0].tolist()
    assert abs(slope - 2.0) < 0.1


def test_binary_bceloss_never_exceeds_100_and_the_sigmoid_slope_at_most_a_quarter():
    p = torch.tensor([0.0, 1.0, 1e-30, 0.5])
    losses = F.binary_cross_entropy(p, torch.tensor([1.0, 0.0, 1.0, 1.0]), reduction="none")
    assert losses.max().item() == 100.0
    z = torch.linspace(-10, 10, 2001, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(torch.sigmoid(z).sum(), z)
    assert slope.max().item() == 0.25


def test_multiclass_the_logits_gradients_sum_to_zero():
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1])), logits)
    torch.testing.assert_close(g.sum(1), torch.zeros(5, dtype=torch.float64))


def test_multiclass_token_weights_3_5_and_2_5_in_the_padding_example():
    logits = torch.randn(2, 5, 4, dtype=torch.float64)
    target = torch.tensor([[1, 4, 2, -100], [0, 3, -100, -100]])
    per_token = F.cross_entropy(logits, target, reduction="none")
    first, second = per_token[0, :3].mean(), per_token[1, :2].mean()
    torch.testing.assert_close(F.cross_entropy(logits, target), 3 / 5 * first + 2 / 5 * second)


def test_scale_float16_overflows_above_65504_and_exp_above_about_11():
    assert torch.finfo(torch.float16).max == 65504.0
    assert torch.isinf(torch.tensor(65520.0).half())
    assert torch.isinf(torch.exp(torch.tensor(11.1, dtype=torch.float16)))


def test_regression_table_parameter_ranges():
    x, y = torch.randn(5), torch.randn(5)
    for delta in (0.0, -1.0):
        with pytest.raises(RuntimeError, match="non-positive values for delta"):
            F.huber_loss(x, y, delta=delta)
    torch.testing.assert_close(F.smooth_l1_loss(x, y, beta=0.0), F.l1_loss(x, y))
    with pytest.raises(RuntimeError, match="negative values for beta"):
        F.smooth_l1_loss(x, y, beta=-1.0)


def test_multiclass_label_smoothing_above_1_raises_and_below_0_is_ignored():
    logits, target = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(logits, target, label_smoothing=1.5)
    # a negative value is neither refused nor applied: the loss is the unsmoothed one
    torch.testing.assert_close(F.cross_entropy(logits, target, label_smoothing=-0.1),
                               F.cross_entropy(logits, target))
