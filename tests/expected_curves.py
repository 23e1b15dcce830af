"""What each widget on the site must draw, computed here with torch for a given setting.

Each entry maps a widget's title (its ``aria-label``) to a function that takes the
current control values (``{control label: shown value}``) and returns
``{(panel title, series label): (x, y)}`` as numpy arrays. A widget on the site with no
entry here fails the browser test, so every new widget brings its expectations.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from expected_chapters import CHAPTER_EXPECTED
from expected_lab_chapters import LAB_EXPECTED
from expected_new_chapters import NEW_CHAPTER_EXPECTED

from losslab.figures import regression
from losslab.losses import fitting


def _curve(fn, x, **kw):
    inp = x.clone().requires_grad_(True)
    out = fn(inp, torch.zeros_like(inp), reduction="none", **kw)
    (grad,) = torch.autograd.grad(out.sum(), inp)
    return out.detach().numpy(), grad.numpy()


def regression_losses(values: dict[str, str]) -> dict:
    delta = float(values["Huber δ"])
    beta = float(values["SmoothL1 β"])
    x = torch.linspace(-3.0, 3.0, 240, dtype=torch.float64)
    curves = {
        "MSE": _curve(F.mse_loss, x),
        "L1": _curve(F.l1_loss, x),
        "Huber(δ)": _curve(F.huber_loss, x, delta=delta),
        "SmoothL1(β)": _curve(F.smooth_l1_loss, x, beta=beta),
    }
    xs = x.numpy()
    out = {}
    for label, (loss, grad) in curves.items():
        out[("loss", label)] = (xs, loss)
        out[("gradient (autograd)", label)] = (xs, grad)
    return out


@functools.cache
def _outlier_fits():
    return regression.outlier_fits()


def outlier_refit(values: dict[str, str]) -> dict:
    k = int(values["outliers"])
    shift = float(values["outlier shift"])
    x, y = fitting.line_data(n=30, n_outliers=k, outlier_shift=shift, seed=0)
    fits = _outlier_fits()
    ki = regression.OUTLIER_COUNTS.index(k)
    si = regression.OUTLIER_SHIFTS.index(shift)
    ends = np.array([float(x.min()), float(x.max())])
    mse_line = fitting.least_squares(x[None], y[None])[0].numpy()
    out = {
        ("data and fitted lines", "data"): (x.numpy(), y.numpy()),
        ("data and fitted lines", "true line y = 2x + 1"): (ends, 2 * ends + 1),
        ("data and fitted lines", "MSE fit"): (ends, mse_line[0] * ends + mse_line[1]),
        ("data and fitted lines", "L1 fit"): (ends, fits["L1"][ki, si, 0] * ends
                                             + fits["L1"][ki, si, 1]),
        ("data and fitted lines", f"Huber fit (δ={regression.HUBER_DELTA:g})"): (
            ends, fits["Huber"][ki, si, 0] * ends + fits["Huber"][ki, si, 1]),
        ("fitted slope against outlier shift", "current shift"): (
            # a vertical marker spanning the panel's fixed y axis
            np.array([shift, shift]), np.array(regression.SLOPE_YLIM)),
    }
    shifts = np.array(regression.OUTLIER_SHIFTS)
    for name in ("MSE", "L1", "Huber"):
        out[("fitted slope against outlier shift", name)] = (shifts, fits[name][ki, :, 0])
    return out


def reduction_scaling(values: dict[str, str]) -> dict:
    n = int(values["batch size"])
    reduction = values["reduction"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, generator=gen, dtype=torch.float64)
    y = 2 * x + 0.1 * torch.randn(64, generator=gen, dtype=torch.float64)
    x, y = x[:n], y[:n]
    ws = np.linspace(-1.0, 5.0, 121)
    loss, grad = [], []
    for w0 in ws:
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        value = F.mse_loss(w * x, y, reduction=reduction)
        (g,) = torch.autograd.grad(value, w)
        loss.append(value.item())
        grad.append(g.item())
    return {("loss", "MSE of w·x"): (ws, np.array(loss)),
            ("gradient (autograd)", "d loss / d w"): (ws, np.array(grad))}


EXPECTED = {
    "How the reduction scales the loss and its gradient": reduction_scaling,
    "Regression losses and their gradients": regression_losses,
    "Refitting a line under each loss as outliers grow": outlier_refit,
}
EXPECTED.update(CHAPTER_EXPECTED)
EXPECTED.update(NEW_CHAPTER_EXPECTED)
EXPECTED.update(LAB_EXPECTED)
