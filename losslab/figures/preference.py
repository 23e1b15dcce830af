"""The preference chapter's figure: the DPO loss and its gradient against the log-ratio margin."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import preference

BETAS = [0.05, 0.1, 0.2, 0.3, 0.5]
SMOOTHINGS = [0.0, 0.1, 0.25]
#: Wide enough that the smoothed loss's minimum, log((1 - eps) / eps) / beta, lies on the
#: panel at every setting (the farthest, beta 0.05 and eps 0.1, is at 43.9).
M_GRID = torch.linspace(-60.0, 60.0, 481, dtype=torch.float64)


@functools.cache
def dpo_curve(beta: float, eps: float):
    """DPO loss over ``M_GRID`` and its autograd gradient in the margin.

    The margin is put in as the chosen response's policy log-probability, with the other
    three log-probabilities at 0, so d loss / d margin is the gradient the chosen
    response's log-probability receives.
    """
    chosen = M_GRID.clone().requires_grad_(True)
    zero = torch.zeros_like(M_GRID)
    loss = preference.dpo_loss(chosen, zero, zero, zero, beta=beta, label_smoothing=eps,
                               reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), chosen)
    return loss.detach().numpy(), grad.numpy()


def bce_curve(beta: float, eps: float) -> np.ndarray:
    """``F.binary_cross_entropy_with_logits(beta * m, 1 - eps)`` over ``M_GRID``."""
    return F.binary_cross_entropy_with_logits(
        beta * M_GRID, torch.full_like(M_GRID, 1 - eps), reduction="none").numpy()


def analytic_gradient(beta: float, eps: float) -> np.ndarray:
    """``beta * (sigmoid(beta m) - (1 - eps))``, the derivative of the DPO loss in m."""
    return (beta * (torch.sigmoid(beta * M_GRID) - (1 - eps))).numpy()


def dpo_explorer() -> widgets.Figure:
    """DPO against the margin, with beta and label smoothing; the gradient from autograd."""
    xs = M_GRID.numpy()
    xlabel = "m, log-ratio margin of chosen over rejected (nats)"
    return widgets.figure(
        [
            widgets.Panel("DPO loss against the margin", xlabel, "loss", [
                widgets.Series("DPO −log σ(β m)", xs, lambda beta, eps: dpo_curve(beta, eps)[0],
                               ("beta", "eps")),
                widgets.Series("BCE with logits on β m, target 1 − ε", xs, bce_curve,
                               ("beta", "eps"), style="dotted", color=5),
            ], xlim=(-60.0, 60.0), xname="m"),
            widgets.Panel("gradient in the margin (autograd)", xlabel, "d loss / d m", [
                widgets.Series("autograd", xs, lambda beta, eps: dpo_curve(beta, eps)[1],
                               ("beta", "eps")),
                widgets.Series("β (σ(β m) − 1 + ε)", xs, analytic_gradient, ("beta", "eps"),
                               style="dotted", color=5),
            ], xlim=(-60.0, 60.0), xname="m"),
        ],
        [
            widgets.slider("beta", BETAS, label="β", value=0.1),
            widgets.slider("eps", SMOOTHINGS, label="label smoothing ε", value=0.0),
        ],
        title="DPO loss and its gradient against the log-ratio margin",
    )
