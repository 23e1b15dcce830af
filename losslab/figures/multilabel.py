"""The multi-label chapter's figure: per-label sigmoids and thresholds against one softmax."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import classification

LABELS = ("A", "B", "C")
TARGET = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)  # A and B present, C absent
FIXED_C = -1.0  # the logit of label C, held still
LOGIT_VALUES = [float(v) for v in np.arange(-4.0, 4.01, 0.5)]
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
SWEEP = torch.linspace(-6.0, 6.0, 61, dtype=torch.float64)


def _logits(z_a, z_b):
    return torch.tensor([z_a, z_b, FIXED_C], dtype=torch.float64)


def sweep_losses(z_b: float):
    """BCE (mean over labels) and softmax-CE against the normalised target, as z_A sweeps.

    Returns ``{name: (loss, d loss / d z_A)}`` with arrays over ``SWEEP``.
    """
    z_a = SWEEP.clone().requires_grad_(True)
    rest = torch.tensor([z_b, FIXED_C], dtype=torch.float64).expand(len(SWEEP), 2)
    logits = torch.cat([z_a[:, None], rest], dim=1)
    target = TARGET.expand(len(SWEEP), 3)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
    ce = F.cross_entropy(logits, target / target.sum(dim=1, keepdim=True), reduction="none")
    out = {}
    for name, loss in (("BCE, independent sigmoids", bce), ("CE, one softmax", ce)):
        (g,) = torch.autograd.grad(loss.sum(), z_a, retain_graph=True)
        out[name] = (loss.detach().numpy(), g.numpy())
    return out


def sigmoid_vs_softmax() -> widgets.Figure:
    """Per-label probabilities, thresholds and decisions; losses and gradients as z_A moves."""
    positions = np.arange(3.0)
    cache: dict = {}

    def losses_at(z_b):
        if z_b not in cache:
            cache[z_b] = sweep_losses(z_b)
        return cache[z_b]

    def decision(z, t):
        return classification.multilabel_predict(torch.tensor([z], dtype=torch.float64),
                                                 t).double().numpy()

    probs = widgets.Panel(
        "probabilities per label (A, B, C)", "label (A = 0, B = 1, C = 2)", "probability",
        [
            widgets.Series("σ(z), independent", positions,
                           lambda z_a, z_b: torch.sigmoid(_logits(z_a, z_b)).numpy(),
                           ("z_a", "z_b"), kind="points", color=0),
            widgets.Series("softmax(z), one distribution", positions,
                           lambda z_a, z_b: torch.softmax(_logits(z_a, z_b), 0).numpy(),
                           ("z_a", "z_b"), kind="points", color=1),
            widgets.Series("thresholds", positions,
                           lambda t_a, t_b: np.array([t_a, t_b, 0.5]), ("t_a", "t_b"),
                           kind="points", color=5),
            widgets.Series("A decision (1 = on)", np.array([-0.15]),
                           lambda z_a, t_a: decision(z_a, t_a), ("z_a", "t_a"), kind="points",
                           color=2),
            widgets.Series("B decision (1 = on)", np.array([0.85]),
                           lambda z_b, t_b: decision(z_b, t_b), ("z_b", "t_b"), kind="points",
                           color=3),
        ],
        xlim=(-0.5, 2.5), ylim=(-0.05, 1.05),
    )
    xs = SWEEP.numpy()
    names = ("BCE, independent sigmoids", "CE, one softmax")
    loss = widgets.Panel(
        "loss as z_A moves (target A, B on; C off)", "logit z_A", "loss",
        [widgets.Series(n, xs, lambda z_b, n=n: losses_at(z_b)[n][0], ("z_b",), color=i,
                        style=["solid", "dashed"][i]) for i, n in enumerate(names)],
    )
    grad = widgets.Panel(
        "gradient on z_A (autograd)", "logit z_A", "d loss / d z_A",
        [widgets.Series(n, xs, lambda z_b, n=n: losses_at(z_b)[n][1], ("z_b",), color=i,
                        style=["solid", "dashed"][i]) for i, n in enumerate(names)],
        ylim=(-0.6, 0.6),
    )
    return widgets.figure(
        [probs, loss, grad],
        [
            widgets.slider("z_a", LOGIT_VALUES, label="logit z_A", value=2.0),
            widgets.slider("z_b", LOGIT_VALUES, label="logit z_B", value=1.0),
            widgets.slider("t_a", THRESHOLDS, label="threshold A", value=0.5),
            widgets.slider("t_b", THRESHOLDS, label="threshold B", value=0.5),
        ],
        title="Multi-label: independent sigmoids against one softmax",
    )
