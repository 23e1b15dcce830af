"""Figures and tables of the chapter "Choosing a loss" (``chapters/choosing.md``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import beyond
from ..losses.choosing import GUIDE, MISTAKES
from ..site import tables


def guide_table():
    """The decision guide as an HTML table (task, output layer, target, loss, example)."""
    return tables.html_table(
        ["task", "output layer", "target", "loss", "example"],
        [[t.name, t.output, t.target, t.loss, t.example] for t in GUIDE.values()],
        code_columns=[3])


def mistakes_table():
    """Run every mistake of ``MISTAKES``; an HTML table of mistake, symptom and fix."""
    return tables.html_table(["mistake", "symptom (as run)", "fix"],
                             [[m.name, m.run(), m.fix] for m in MISTAKES], code_columns=[2])


GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.0, 5.0]


def _ones(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x)


def margin_losses() -> widgets.Figure:
    """Binary classification losses as functions of the margin m = y z, with gradients."""
    return widgets.loss_explorer(
        {
            "logistic (BCE with logits)": lambda input, target: F.soft_margin_loss(
                input, _ones(input), reduction="none"),
            "hinge max(0, 1 − m)": lambda input, target: F.margin_ranking_loss(
                input, torch.zeros_like(input), _ones(input), margin=1.0, reduction="none"),
            "focal (γ)": lambda input, target, gamma: beyond.sigmoid_focal_loss(
                input, _ones(input), alpha=None, gamma=gamma, reduction="none"),
            "MSE on σ(z)": lambda input, target: F.mse_loss(
                torch.sigmoid(input), _ones(input), reduction="none"),
        },
        controls=[widgets.slider("gamma", GAMMAS, label="focal γ", value=2.0)],
        x=torch.linspace(-4.0, 4.0, 161, dtype=torch.float64),
        xlabel="margin m = y·z (label y = ±1)",
        loss_ylim=(-0.1, 5.0), grad_ylim=(-1.4, 0.1),
        title="Classification losses against the margin",
    )
