"""Expected curves of the classification, beyond-the-basics chapters' widgets.

Computed here directly with ``torch.nn.functional`` and ``torch.autograd`` for the
control values shown in the browser (``{control label: shown value}``), independently
of the figure builders in ``losslab``. Merged into ``expected_curves.EXPECTED``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _grad(fn, x):
    """Values and autograd derivative of ``fn`` (elementwise, x -> same shape) at ``x``."""
    inp = x.clone().requires_grad_(True)
    out = fn(inp)
    (grad,) = torch.autograd.grad(out.sum(), inp)
    return out.detach().double().numpy(), grad.double().numpy()


def _on(value: str) -> bool:
    return {"on": True, "off": False}[value]


# --- binary ------------------------------------------------------------------------------------

def binary_bce(values: dict[str, str]) -> dict:
    z0 = float(values["logit z"])
    y = 1.0 if _on(values["label y = 1"]) else 0.0
    w = torch.tensor(float(values["pos_weight"]), dtype=torch.float64)
    z = torch.linspace(-6.0, 6.0, 121, dtype=torch.float64)

    def bce(inp):
        return F.binary_cross_entropy_with_logits(inp, torch.full_like(inp, y), pos_weight=w,
                                                  reduction="none")

    loss, grad = _grad(bce, z)
    point_loss, point_grad = _grad(bce, torch.tensor([z0], dtype=torch.float64))
    zs = z.numpy()
    return {
        ("BCE loss", "BCEWithLogitsLoss"): (zs, loss),
        ("BCE loss", "current logit"): (np.array([z0]), point_loss),
        ("gradient (autograd)", "autograd"): (zs, grad),
        ("gradient (autograd)", "σ(z) − y (pos_weight 1)"): (zs, torch.sigmoid(z).numpy() - y),
        ("gradient (autograd)", "current logit"): (np.array([z0]), point_grad),
    }


def binary_float32(values: dict[str, str]) -> dict:
    y = 1.0 if _on(values["label y = 1"]) else 0.0
    z = torch.linspace(-100.0, 100.0, 401, dtype=torch.float32)
    t = torch.full_like(z, y)

    def naive(inp):
        p = torch.sigmoid(inp)
        return -(t * torch.log(p) + (1 - t) * torch.log(1 - p))

    forms = {
        "σ then log (float32)": naive,
        "BCELoss on σ(z) (float32)": lambda inp: F.binary_cross_entropy(
            torch.sigmoid(inp), t, reduction="none"),
        "BCEWithLogitsLoss (float32)": lambda inp: F.binary_cross_entropy_with_logits(
            inp, t, reduction="none"),
    }
    out = {}
    zs = z.double().numpy()
    for label, fn in forms.items():
        loss, grad = _grad(fn, z)
        out[("loss in float32", label)] = (zs, loss)
        out[("gradient in float32 (autograd)", label)] = (zs, grad)
    return out


CHAPTER_EXPECTED = {
    "Binary cross-entropy from a logit": binary_bce,
    "Float32 binary cross-entropy: sigmoid then log against the stable form": binary_float32,
}
