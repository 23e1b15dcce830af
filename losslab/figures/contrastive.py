"""The contrastive chapter's figure: InfoNCE over one negative's similarity, with temperature."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..engine import widgets
from ..losses import contrastive

TEMPERATURES = [0.05, 0.1, 0.2, 0.5, 1.0]
BATCH_SIZES = [2, 8, 32, 128, 512]
#: The anchor's similarity to its positive.
S_POS = 0.6
#: The moving negative's similarity, along the x axis.
S_GRID = torch.linspace(-1.0, 1.0, 101, dtype=torch.float64)
#: The batch of the third panel: 16 examples, so 15 negatives, spread from easy to hard.
SPREAD = torch.linspace(-0.5, 0.55, 15, dtype=torch.float64)


def other_negatives() -> torch.Tensor:
    """Similarities of the other in-batch negatives (510 of them; a batch of N uses N - 2)."""
    gen = torch.Generator().manual_seed(0)
    return torch.tanh(0.5 * torch.randn(510, generator=gen, dtype=torch.float64))


@functools.cache
def moving_negative(temperature: float, batch: int):
    """InfoNCE and its autograd gradient in one negative's similarity, over ``S_GRID``.

    The batch has ``batch`` examples: the anchor's positive, the moving negative and
    ``batch - 2`` other negatives. Returns (loss, gradient, softmax weight / temperature).
    """
    others = other_negatives()[: batch - 2]
    s_neg = S_GRID.clone().requires_grad_(True)
    rows = len(S_GRID)
    negatives = torch.cat([s_neg[:, None], others.expand(rows, -1)], dim=1)
    s_pos = torch.full((rows,), S_POS, dtype=torch.float64)
    loss = contrastive.loss_from_similarities(s_pos, negatives, temperature)
    # The rows are independent, so the gradient of their sum holds each row's derivative.
    (grad,) = torch.autograd.grad(loss.sum(), s_neg)
    logits = torch.cat([s_pos[:, None], negatives.detach()], dim=1) / temperature
    analytic = logits.softmax(1)[:, 1] / temperature
    return loss.detach().numpy(), grad.numpy(), analytic.numpy()


def push_shares(temperature: float) -> np.ndarray:
    """Each negative's share of the gradient on the negatives, in a batch of 16 (autograd)."""
    s_neg = SPREAD.clone().requires_grad_(True)
    loss = contrastive.loss_from_similarities(torch.tensor(S_POS, dtype=torch.float64), s_neg,
                                              temperature)
    (g,) = torch.autograd.grad(loss, s_neg)
    return (g / g.sum()).numpy()


def temperature_explorer() -> widgets.Figure:
    """InfoNCE and its gradient against one negative's similarity; each negative's share."""
    xs = S_GRID.numpy()
    return widgets.figure(
        [
            widgets.Panel(
                "InfoNCE loss against one negative's similarity",
                "s, cosine similarity of the moving negative", "loss",
                [widgets.Series("InfoNCE", xs, lambda tau, batch: moving_negative(tau, batch)[0],
                                ("tau", "batch"))],
                xlim=(-1.0, 1.0)),
            widgets.Panel(
                "gradient in that similarity (autograd)",
                "s, cosine similarity of the moving negative", "d loss / d s",
                [widgets.Series("autograd", xs,
                                lambda tau, batch: moving_negative(tau, batch)[1],
                                ("tau", "batch")),
                 widgets.Series("softmax weight / τ", xs,
                                lambda tau, batch: moving_negative(tau, batch)[2],
                                ("tau", "batch"), style="dotted", color=5)],
                xlim=(-1.0, 1.0)),
            widgets.Panel(
                "share of the push on each of 15 negatives",
                "s, cosine similarity of the negative", "share of the gradient",
                [widgets.Series("negatives (batch of 16)", SPREAD.numpy(),
                                lambda tau: push_shares(tau),
                                ("tau",), kind="points", color=1)],
                xlim=(-1.0, 1.0), ylim=(-0.02, 1.02)),
        ],
        [
            widgets.slider("tau", TEMPERATURES, label="temperature τ", value=0.1),
            widgets.slider("batch", BATCH_SIZES, label="batch size N", value=32),
        ],
        title="InfoNCE: temperature, hard negatives and batch size",
    )
