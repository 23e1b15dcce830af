"""The numbers in the new chapters' self-check answers, computed with torch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from losslab.losses import sequences


def test_gaussian_best_variance_for_an_error_of_two():
    var = torch.linspace(0.5, 10.0, 19001, dtype=torch.float64)
    loss = F.gaussian_nll_loss(torch.full_like(var, 2.0), torch.zeros_like(var), var,
                               reduction="none")
    assert var[loss.argmin()].item() == pytest.approx(4.0, abs=1e-3)
    assert loss.min().item() == pytest.approx(0.5 * (math.log(4) + 1), abs=1e-9)
    assert round(loss.min().item(), 3) == 1.193


def test_multi_margin_self_check():
    loss = F.multi_margin_loss(torch.tensor([[2.0, 1.5]]), torch.tensor([0]), margin=1.0)
    assert loss.item() == pytest.approx(0.25)


def test_ctc_self_checks():
    assert sequences.extended_label(torch.tensor([2, 1, 1])).tolist() == [0, 2, 0, 1, 0, 1, 0]
    log_probs = torch.randn(4, 1, 3, dtype=torch.float64).log_softmax(2)
    target = torch.tensor([[2, 1, 1]])
    assert torch.isfinite(F.ctc_loss(log_probs, target, [4], [3]))
    assert torch.isinf(F.ctc_loss(log_probs[:3], target, [3], [3]))
    # "mean" divides each loss by its target length before the batch mean.
    losses = torch.tensor([6.0, 3.0])
    assert (losses / torch.tensor([3.0, 1.0])).mean().item() == pytest.approx(2.5)
    lp = torch.randn(8, 2, 4, dtype=torch.float64).log_softmax(2)
    targets, lengths = torch.tensor([[1, 2, 3], [2, 0, 0]]), ([8, 8], [3, 1])
    none = F.ctc_loss(lp, targets, *lengths, reduction="none")
    assert F.ctc_loss(lp, targets, *lengths).item() == pytest.approx(
        (none / torch.tensor([3.0, 1.0], dtype=torch.float64)).mean().item())
