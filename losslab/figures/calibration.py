"""The calibration chapter's figure: a reliability diagram under a temperature slider, with
the held-out NLL and ECE against the temperature and the NLL's derivative in it."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..engine import widgets
from ..losses import calibration, training

#: The temperatures the slider offers, and the finer grid the curves are drawn on.
TEMPERATURES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0]
T_GRID = torch.linspace(0.5, 4.0, 71, dtype=torch.float64)
N_BINS = 10
#: The top of the NLL and ECE panel: above the largest NLL of the three models on T_GRID.
SCORES_TOP = 1.45
MODELS = list(training.CALIBRATION_LOSSES)


@functools.cache
def trained() -> dict[str, dict[str, torch.Tensor | float]]:
    """Per model: its validation and test logits and labels, and the temperature fitted by
    NLL on the validation set."""
    _, _, _, y_val, _, y_test = training.calibration_data()
    out = {}
    for name in MODELS:
        run = training.calibration_lab(name)
        z_val, z_test = run.outputs["val"][-1], run.outputs["test"][-1]
        out[name] = {"val": z_val, "y_val": y_val, "test": z_test, "y_test": y_test,
                     "fitted": calibration.fit_temperature(z_val, y_val)}
    return out


def bins_at(model: str, t: float) -> calibration.Bins:
    """The test set's reliability bins for ``model`` at temperature ``t``."""
    m = trained()[model]
    probs = torch.softmax(m["test"] / t, dim=1)
    conf, correct = calibration.top_label(probs, m["y_test"])
    return calibration.reliability(conf, correct, N_BINS)


@functools.cache
def curves(model: str) -> dict[str, np.ndarray]:
    """Over ``T_GRID``: the test NLL, ECE, and d NLL / d T from autograd and in closed form."""
    m = trained()[model]
    nll, ece, grad, closed = [], [], [], []
    for t in T_GRID.tolist():
        temp = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        value = calibration.nll(m["test"], m["y_test"], temp)
        (g,) = torch.autograd.grad(value, temp)
        nll.append(value.item())
        grad.append(g.item())
        closed.append(calibration.nll_temperature_grad(m["test"], m["y_test"], t).item())
        ece.append(calibration.multiclass_ece(m["test"], m["y_test"], 15, t).item())
    return {"nll": np.array(nll), "ece": np.array(ece), "grad": np.array(grad),
            "closed": np.array(closed)}


def temperature_explorer() -> widgets.Figure:
    """Reliability diagram at T, NLL and ECE against T, and d NLL / d T, per model."""
    with training.single_thread():
        return _temperature_explorer()


def _temperature_explorer() -> widgets.Figure:
    ts = T_GRID.numpy()
    diagonal = np.array([0.0, 1.0])

    def point(key):
        def at(model, t):
            i = int(np.argmin(np.abs(ts - t)))
            return np.array([curves(model)[key][i]])
        return at

    def fitted(model):
        return np.array([trained()[model]["fitted"]] * 2)

    reliability = widgets.Panel(
        "reliability diagram (test set)", "confidence (mean per bin)", "accuracy in the bin",
        [
            widgets.Series("perfect calibration", diagonal, diagonal, style="dotted", color=5),
            widgets.Series("bins at T = 1", lambda model: bins_at(model, 1.0).confidence.numpy(),
                           lambda model: bins_at(model, 1.0).accuracy.numpy(), ("model",),
                           kind="points", color=1),
            widgets.Series("bins at T", lambda model, t: bins_at(model, t).confidence.numpy(),
                           lambda model, t: bins_at(model, t).accuracy.numpy(), ("model", "t"),
                           kind="points", color=0),
        ],
        xlim=(0.0, 1.0), ylim=(0.0, 1.0), xname="confidence",
    )
    scores = widgets.Panel(
        "test NLL and ECE against T", "temperature T", "NLL (nats) / ECE",
        [
            widgets.Series("NLL", ts, lambda model: curves(model)["nll"], ("model",), color=0),
            widgets.Series("ECE (15 bins)", ts, lambda model: curves(model)["ece"], ("model",),
                           style="dashed", color=2),
            widgets.Series("NLL at T", lambda t, **_: np.array([t]), point("nll"), ("model", "t"),
                           kind="points", color=0),
            widgets.Series("ECE at T", lambda t, **_: np.array([t]), point("ece"), ("model", "t"),
                           kind="points", color=2),
            widgets.Series("T fitted on validation", fitted,
                           lambda model: np.array([0.0, SCORES_TOP]), ("model",), style="dotted",
                           color=5),
        ],
        ylim=(0.0, SCORES_TOP),
    )
    gradient = widgets.Panel(
        "d NLL / d T", "temperature T", "d NLL / d T",
        [
            widgets.Series("autograd", ts, lambda model: curves(model)["grad"], ("model",),
                           color=0),
            widgets.Series("closed form", ts, lambda model: curves(model)["closed"], ("model",),
                           style="dashed", color=3),
            widgets.Series("at T", lambda t, **_: np.array([t]), point("grad"), ("model", "t"),
                           kind="points", color=1),
        ],
    )
    return widgets.figure(
        [reliability, scores, gradient],
        [
            widgets.dropdown("model", MODELS, label="trained with"),
            widgets.slider("t", TEMPERATURES, label="temperature T", value=1.0),
        ],
        title="Temperature scaling: reliability, NLL and ECE",
    )
