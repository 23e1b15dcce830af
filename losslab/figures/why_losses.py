"""The first chapter's figure: how the reduction scales a loss and its gradient."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets

BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64]
WEIGHTS = np.linspace(-1.0, 5.0, 121)


def batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of ``n`` points ``(x, y)`` with ``y = 2 x`` plus noise, shapes (n,), float64."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, generator=gen, dtype=torch.float64)
    y = 2 * x + 0.1 * torch.randn(64, generator=gen, dtype=torch.float64)
    return x[:n], y[:n]


def loss_over_weight(n: int, reduction: str) -> tuple[np.ndarray, np.ndarray]:
    """MSE of the model ``w * x`` on a batch of ``n``, and d loss / d w, for every w in WEIGHTS.

    Returns two arrays of WEIGHTS' length, computed with ``F.mse_loss`` and autograd.
    """
    x, y = batch(n)
    w = torch.tensor(WEIGHTS, requires_grad=True)
    pred = w[:, None] * x[None, :]
    per_w = F.mse_loss(pred, y.expand_as(pred), reduction="none")
    loss = per_w.mean(dim=1) if reduction == "mean" else per_w.sum(dim=1)
    (grad,) = torch.autograd.grad(loss.sum(), w)
    return loss.detach().numpy(), grad.numpy()


def reduction_widget() -> widgets.Figure:
    """Loss and gradient against the weight, for a batch size and a reduction chosen live."""
    def loss(n, reduction):
        return loss_over_weight(n, reduction)[0]

    def grad(n, reduction):
        return loss_over_weight(n, reduction)[1]

    deps = ("n", "reduction")
    return widgets.figure(
        [
            widgets.Panel("loss", "weight w", "loss",
                          [widgets.Series("MSE of w·x", WEIGHTS, loss, deps, color=0)]),
            widgets.Panel("gradient (autograd)", "weight w", "d loss / d w",
                          [widgets.Series("d loss / d w", WEIGHTS, grad, deps, color=1)]),
        ],
        [
            widgets.slider("n", BATCH_SIZES, label="batch size", value=8),
            widgets.dropdown("reduction", {"mean": "mean", "sum": "sum"}, label="reduction"),
        ],
        title="How the reduction scales the loss and its gradient",
    )
