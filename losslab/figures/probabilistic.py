"""The probabilistic chapter's figures: NLL on log-probabilities, Poisson and Gaussian NLL."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets

# --- NLLLoss: a batch of three, the first sample's true-class logit moves ------------------------

NLL_LOGITS = torch.tensor([[0.0, 1.0, -0.5, 0.5],
                           [2.0, 0.0, 0.5, -1.0],
                           [0.0, -1.0, 1.5, 0.5]], dtype=torch.float64)
NLL_TARGET = torch.tensor([0, 0, 2])
NLL_Z = torch.linspace(-6.0, 6.0, 121, dtype=torch.float64)
NLL_INPUTS = {
    "log_softmax(z), right": "log_softmax",
    "softmax(z), wrong": "softmax",
    "raw logits z, wrong": "logits",
}
CLASS_WEIGHTS = [0.25, 1.0, 4.0]


def nll_input(z: torch.Tensor, form: str) -> torch.Tensor:
    """What a learner passes to ``nll_loss``: log-probabilities, probabilities or logits."""
    if form == "log_softmax":
        return z.log_softmax(dim=-1)
    if form == "softmax":
        return z.softmax(dim=-1)
    return z


@functools.cache
def nll_curve(form: str, weight0: float, reduction: str):
    """NLL of the batch and its autograd gradient in sample 0's true-class logit, over NLL_Z."""
    weight = torch.tensor([weight0, 1.0, 1.0, 1.0], dtype=torch.float64)
    z0 = NLL_Z.clone().requires_grad_(True)
    # One copy of the batch per point of the grid, with sample 0's true-class logit at z0.
    rest = NLL_LOGITS.expand(len(NLL_Z), 3, 4)
    lift = torch.zeros(3, 4, dtype=torch.float64)
    lift[0, 0] = 1.0
    z = rest + (z0[:, None, None] - NLL_LOGITS[0, 0]) * lift
    targets = NLL_TARGET.expand(len(NLL_Z), 3)
    # nll_loss over (N, C, d) = (grid, classes, samples) reduces over everything; keep the
    # grid apart by taking each copy's per-sample losses and reducing them as PyTorch does.
    per_sample = F.nll_loss(nll_input(z, form).transpose(1, 2), targets, weight=weight,
                            reduction="none")
    loss = per_sample.sum(dim=1)
    if reduction == "mean":
        loss = loss / weight[NLL_TARGET].sum()
    (grad,) = torch.autograd.grad(loss.sum(), z0)
    return loss.detach().numpy(), grad.numpy()


def nll_explorer() -> widgets.Figure:
    """NLLLoss of a batch of three against one logit, for the three things people pass it."""
    xs = NLL_Z.numpy()
    depends = ("form", "weight0", "reduction")
    return widgets.figure(
        [
            widgets.Panel("NLL of the batch", "logit z of sample 0's true class", "loss",
                          [widgets.Series("nll_loss(input, target)", xs,
                                          lambda **p: nll_curve(**p)[0], depends)]),
            widgets.Panel("gradient in that logit (autograd)", "logit z of sample 0's true class",
                          "d loss / d z", [widgets.Series("autograd", xs,
                                                          lambda **p: nll_curve(**p)[1], depends)]),
        ],
        [
            widgets.dropdown("form", {k: v for k, v in NLL_INPUTS.items()},
                             label="input to nll_loss"),
            widgets.slider("weight0", CLASS_WEIGHTS, label="weight of class 0", value=1.0),
            widgets.dropdown("reduction", ["sum", "mean"], label="reduction"),
        ],
        title="NLLLoss of a batch against one logit",
    )


# --- PoissonNLLLoss over the predicted rate ------------------------------------------------------

RATES = torch.linspace(0.1, 10.0, 100, dtype=torch.float64)
COUNTS = [0.0, 1.0, 3.0, 6.0]


@functools.cache
def poisson_curve(count: float, log_input: bool, full: bool):
    """Poisson NLL over RATES and its autograd gradient in the input (log-rate or rate)."""
    inp = (RATES.log() if log_input else RATES).clone().requires_grad_(True)
    target = torch.full_like(inp, count)
    loss = F.poisson_nll_loss(inp, target, log_input=log_input, full=full, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), inp)
    analytic = RATES - count if log_input else 1 - count / (RATES + 1e-8)
    return loss.detach().numpy(), grad.numpy(), analytic.numpy()


def poisson_explorer() -> widgets.Figure:
    """Poisson NLL against the predicted rate, for a count, ``log_input`` and ``full``."""
    xs = RATES.numpy()
    depends = ("count", "log_input", "full")

    def nearest(count):
        # The rate on the grid closest to the count (the grid starts at 0.1, above 0).
        return int(np.argmin(np.abs(xs - max(count, 0.1))))

    def at_count(count, log_input, full):
        i = nearest(count)
        return poisson_curve(count, log_input, full)[0][i:i + 1]

    return widgets.figure(
        [
            widgets.Panel("Poisson NLL against the rate", "predicted rate λ", "loss", [
                widgets.Series("PoissonNLLLoss", xs, lambda **p: poisson_curve(**p)[0], depends),
                widgets.Series("λ = y (the minimum)",
                               lambda count, **_: xs[[nearest(count)]],
                               at_count, depends, kind="points", color=1),
            ]),
            widgets.Panel("gradient in the input (autograd)", "predicted rate λ",
                          "d loss / d input", [
                widgets.Series("autograd", xs, lambda **p: poisson_curve(**p)[1], depends),
                widgets.Series("exp(θ) − y, or 1 − y / λ", xs,
                               lambda **p: poisson_curve(**p)[2], depends, style="dotted",
                               color=5),
            ]),
        ],
        [
            widgets.slider("count", COUNTS, label="observed count y", value=3.0),
            widgets.toggle("log_input", label="log_input (input is log λ)", value=True),
            widgets.toggle("full", label="full (add Stirling's log y!)", value=False),
        ],
        title="Poisson NLL against the predicted rate",
    )


# --- GaussianNLLLoss: error against predicted variance ------------------------------------------

VARIANCES = torch.linspace(0.02, 4.0, 200, dtype=torch.float64)
ERRORS = [0.0, 0.5, 1.0, 1.5]
EPSILONS = [1e-6, 0.25, 1.0]


@functools.cache
def gaussian_curve(error: float, eps: float, full: bool):
    """Gaussian NLL over VARIANCES for one error, and its autograd gradient in the variance."""
    var = VARIANCES.clone().requires_grad_(True)
    mean = torch.full_like(var, error)
    loss = F.gaussian_nll_loss(mean, torch.zeros_like(var), var, full=full, eps=eps,
                               reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), var)
    return loss.detach().numpy(), grad.numpy()


def gaussian_explorer() -> widgets.Figure:
    """Gaussian NLL against the predicted variance: where error and variance balance."""
    xs = VARIANCES.numpy()
    depends = ("error", "eps", "full")

    def best_var(error, eps, **_):
        return np.array([max(error**2, eps, float(xs[0]))])

    def at_best(error, eps, full):
        var = torch.tensor(best_var(error, eps))
        return F.gaussian_nll_loss(torch.tensor([error], dtype=torch.float64),
                                   torch.zeros(1, dtype=torch.float64), var, full=full,
                                   eps=eps, reduction="none").numpy()

    return widgets.figure(
        [
            widgets.Panel("Gaussian NLL against the variance", "predicted variance σ²", "loss", [
                widgets.Series("GaussianNLLLoss", xs, lambda **p: gaussian_curve(**p)[0],
                               depends),
                widgets.Series("σ² = max(e², eps)", best_var, at_best, depends, kind="points",
                               color=1),
            ]),
            widgets.Panel("gradient in the variance (autograd)", "predicted variance σ²",
                          "d loss / d σ²", [
                widgets.Series("autograd", xs, lambda **p: gaussian_curve(**p)[1], depends),
            ]),
        ],
        [
            widgets.slider("error", ERRORS, label="error |input − target|", value=1.0),
            widgets.dropdown("eps", {"1e-06 (default)": 1e-6, "0.25": 0.25, "1.0": 1.0},
                             label="eps (variance clamp)"),
            widgets.toggle("full", label="full (add log(2π) / 2)", value=False),
        ],
        title="Gaussian NLL: error against predicted variance",
    )
