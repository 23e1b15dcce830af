"""The binary classification chapter's figures: BCE from a logit, and float32 breakdown."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import classification, curves

LOGITS = [float(v) for v in np.arange(-6.0, 6.01, 0.5)]
POS_WEIGHTS = [0.5, 1.0, 2.0, 5.0]
CURVE_Z = torch.linspace(-6.0, 6.0, 121, dtype=torch.float64)
WIDE_Z = torch.linspace(-100.0, 100.0, 401, dtype=torch.float32)


def _bce(pos_weight: float):
    def fn(logits, target):
        pw = torch.tensor(pos_weight, dtype=logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw,
                                                  reduction="none")
    return fn


def bce_explorer() -> widgets.Figure:
    """BCE-with-logits loss and autograd gradient over the logit, with label and pos_weight."""
    xs = CURVE_Z.numpy()
    cache: dict = {}

    def curve(label: bool, pos_weight: float):
        key = (bool(label), pos_weight)
        if key not in cache:
            cache[key] = curves.loss_and_grad(_bce(pos_weight), CURVE_Z, float(label))
        return cache[key]

    def at(z: float, label: bool, pos_weight: float):
        point = torch.tensor([z], dtype=torch.float64)
        return curves.loss_and_grad(_bce(pos_weight), point, float(label))

    depends_curve = ("label", "pos_weight")
    depends_point = ("z", "label", "pos_weight")
    loss_panel = widgets.Panel(
        "BCE loss", "logit z", "loss",
        [
            widgets.Series("BCEWithLogitsLoss", xs, lambda **p: curve(**p)[0], depends_curve),
            widgets.Series("current logit", lambda z, **_: np.array([z]),
                           lambda **p: at(**p)[0], depends_point, kind="points", color=1),
        ],
    )
    grad_panel = widgets.Panel(
        "gradient (autograd)", "logit z", "d loss / d z",
        [
            widgets.Series("autograd", xs, lambda **p: curve(**p)[1], depends_curve),
            widgets.Series("σ(z) − y (pos_weight 1)", xs,
                           lambda label: torch.sigmoid(CURVE_Z).numpy() - float(label),
                           ("label",), style="dotted", color=2),
            widgets.Series("current logit", lambda z, **_: np.array([z]),
                           lambda **p: at(**p)[1], depends_point, kind="points", color=1),
        ],
    )
    return widgets.figure(
        [loss_panel, grad_panel],
        [
            widgets.slider("z", LOGITS, label="logit z", value=1.0),
            widgets.toggle("label", label="label y = 1", value=True),
            widgets.slider("pos_weight", POS_WEIGHTS, label="pos_weight", value=1.0),
        ],
        title="Binary cross-entropy from a logit",
    )


def float32_breakdown() -> widgets.Figure:
    """Three float32 forms of BCE over logits from -100 to 100, loss and autograd gradient."""
    forms = {
        "σ then log (float32)": classification.bce_naive,
        "BCELoss on σ(z) (float32)": lambda logits, target: F.binary_cross_entropy(
            torch.sigmoid(logits), target, reduction="none"),
        "BCEWithLogitsLoss (float32)": lambda logits, target: F.binary_cross_entropy_with_logits(
            logits, target, reduction="none"),
    }
    styles = ["solid", "dashed", "dotted"]
    xs = WIDE_Z.double().numpy()
    loss_series, grad_series = [], []
    for color, (name, fn) in enumerate(forms.items()):
        cache: dict = {}

        def pair(label, fn=fn, cache=cache):
            if label not in cache:
                cache[label] = curves.loss_and_grad(fn, WIDE_Z, float(label))
            return cache[label]

        loss_series.append(widgets.Series(name, xs, lambda label, pair=pair: pair(label)[0],
                                          ("label",), style=styles[color], color=color))
        grad_series.append(widgets.Series(name, xs, lambda label, pair=pair: pair(label)[1],
                                          ("label",), style=styles[color], color=color))
    return widgets.figure(
        [
            widgets.Panel("loss in float32", "logit z", "loss", loss_series, ylim=(-5.0, 110.0)),
            widgets.Panel("gradient in float32 (autograd)", "logit z", "d loss / d z",
                          grad_series, ylim=(-1.3, 1.3)),
        ],
        [widgets.toggle("label", label="label y = 1", value=False)],
        title="Float32 binary cross-entropy: sigmoid then log against the stable form",
    )
