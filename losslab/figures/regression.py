"""The regression chapter's figures: loss curves with gradients, and the outlier refit."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import fitting, regression

DELTAS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0]
OUTLIER_SHIFTS = [0.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 25.0, 30.0]
OUTLIER_COUNTS = [0, 1, 2, 3, 4, 5, 6]
HUBER_DELTA = 1.0
# The slope panel's axis; the marker of the current shift spans exactly this.
SLOPE_YLIM = (1.0, 8.5)


def loss_curves() -> widgets.Figure:
    """MSE, L1, Huber(delta) and SmoothL1(beta) with their autograd gradients, live."""
    return widgets.loss_explorer(
        {
            "MSE": regression.mse,
            "L1": regression.l1,
            "Huber(δ)": regression.huber,
            "SmoothL1(β)": regression.smooth_l1,
        },
        controls=[
            widgets.slider("delta", DELTAS, label="Huber δ", value=1.0),
            widgets.slider("beta", DELTAS, label="SmoothL1 β", value=1.0),
        ],
        title="Regression losses and their gradients",
    )


def outlier_fits(n: int = 30, seed: int = 0, steps: int = 1500) -> dict[str, np.ndarray]:
    """Fit lines under MSE, L1 and Huber for every outlier count and shift of the widget.

    Returns a dict of arrays: ``"x"`` (n,), ``"y"`` (counts, shifts, n) and, per loss,
    ``[w, b]`` of shape (counts, shifts, 2).
    """
    xs, ys = [], []
    for k in OUTLIER_COUNTS:
        for shift in OUTLIER_SHIFTS:
            x, y = fitting.line_data(n=n, n_outliers=k, outlier_shift=shift, seed=seed)
            xs.append(x)
            ys.append(y)
    X, Y = torch.stack(xs), torch.stack(ys)
    shape = (len(OUTLIER_COUNTS), len(OUTLIER_SHIFTS))
    out = {"x": X[0].numpy(), "y": Y.reshape(*shape, n).numpy()}
    fits = {
        "MSE": lambda p, t: F.mse_loss(p, t, reduction="none"),
        "L1": lambda p, t: F.l1_loss(p, t, reduction="none"),
        "Huber": lambda p, t: F.huber_loss(p, t, reduction="none", delta=HUBER_DELTA),
    }
    for name, fn in fits.items():
        out[name] = fitting.fit_lines(X, Y, fn, steps=steps).reshape(*shape, 2).numpy()
    return out


def outlier_widget(fits: dict[str, np.ndarray] | None = None) -> widgets.Figure:
    """Scatter with the line each loss fits, as outliers grow; and slope against shift."""
    fits = outlier_fits() if fits is None else fits
    x = fits["x"]
    ki = {k: i for i, k in enumerate(OUTLIER_COUNTS)}
    si = {s: i for i, s in enumerate(OUTLIER_SHIFTS)}
    ends = np.array([x.min(), x.max()])

    def line(name):
        def ends_of_line(n_outliers, shift):
            w, b = fits[name][ki[n_outliers], si[shift]]
            return w * ends + b
        return ends_of_line

    scatter = widgets.Panel(
        "data and fitted lines", "x", "y",
        [
            widgets.Series("data", x,
                           lambda n_outliers, shift: fits["y"][ki[n_outliers], si[shift]],
                           ("n_outliers", "shift"), kind="points", color=5),
            widgets.Series("true line y = 2x + 1", ends, 2 * ends + 1, style="dotted", color=5),
            widgets.Series("MSE fit", ends, line("MSE"), ("n_outliers", "shift"), color=0),
            widgets.Series("L1 fit", ends, line("L1"), ("n_outliers", "shift"), color=1),
            widgets.Series(f"Huber fit (δ={HUBER_DELTA:g})", ends, line("Huber"),
                           ("n_outliers", "shift"), style="dashed", color=2),
        ],
    )
    shifts = np.array(OUTLIER_SHIFTS)
    slopes = widgets.Panel(
        "fitted slope against outlier shift", "outlier shift", "slope w (true: 2)",
        [
            widgets.Series("MSE", shifts, lambda n_outliers: fits["MSE"][ki[n_outliers], :, 0],
                           ("n_outliers",), color=0),
            widgets.Series("L1", shifts, lambda n_outliers: fits["L1"][ki[n_outliers], :, 0],
                           ("n_outliers",), color=1),
            widgets.Series("Huber", shifts, lambda n_outliers: fits["Huber"][ki[n_outliers], :, 0],
                           ("n_outliers",), style="dashed", color=2),
            widgets.Series("current shift", lambda shift: np.array([shift, shift]),
                           lambda shift: np.array(SLOPE_YLIM), ("shift",), style="dotted", color=5),
        ],
        ylim=SLOPE_YLIM,
    )
    return widgets.figure(
        [scatter, slopes],
        [
            widgets.slider("n_outliers", OUTLIER_COUNTS, label="outliers", value=3),
            widgets.slider("shift", OUTLIER_SHIFTS, label="outlier shift", value=10.0),
        ],
        title="Refitting a line under each loss as outliers grow",
    )
