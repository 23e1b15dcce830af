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


# --- multi-class -------------------------------------------------------------------------------

def multiclass_three_logits(values: dict[str, str]) -> dict:
    z0, z1, z2 = (float(values[f"logit z{s}"]) for s in "₀₁₂")
    target = int(values["target"].split()[-1])
    sweep = torch.linspace(-6.0, 6.0, 61, dtype=torch.float64)
    logits = torch.stack([sweep, torch.full_like(sweep, z1), torch.full_like(sweep, z2)], 1)
    logits.requires_grad_(True)
    loss = F.cross_entropy(logits, torch.full((61,), target), reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    now = torch.tensor([[z0, z1, z2]], dtype=torch.float64, requires_grad=True)
    now_loss = F.cross_entropy(now, torch.tensor([target]))
    (now_grad,) = torch.autograd.grad(now_loss, now)
    xs = sweep.numpy()
    out = {
        ("softmax probabilities", "softmax(z)"): (np.arange(3.0),
                                                 F.softmax(now.detach(), 1)[0].numpy()),
        ("softmax probabilities", "one-hot target"): (np.arange(3.0), np.eye(3)[target]),
        ("loss as z₀ moves", "cross_entropy"): (xs, loss.detach().numpy()),
        ("loss as z₀ moves", "current z"): (np.array([z0]), np.array([now_loss.item()])),
        ("gradient as z₀ moves", "softmax(z) − onehot at current z"): (
            np.full(3, z0), now_grad[0].numpy()),
    }
    for k, sub in enumerate("₀₁₂"):
        out[("gradient as z₀ moves", f"∂/∂z{sub} (autograd)")] = (xs, grad[:, k].numpy())
    return out


def multiclass_temperature(values: dict[str, str]) -> dict:
    t = float(values["temperature T"])
    logits = torch.tensor([3.0, 1.5, 1.0, 0.0, -1.0], dtype=torch.float64)
    classes = np.arange(5.0)
    t_grid = torch.logspace(-1, 1, 121, dtype=torch.float64)
    curve = [F.cross_entropy(logits[None] / u, torch.tensor([0])).item() for u in t_grid]
    z = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(z[None] / t, torch.tensor([0]))
    (grad,) = torch.autograd.grad(loss, z)
    return {
        ("softmax(z / T)", "at T"): (classes, F.softmax(logits / t, 0).numpy()),
        ("softmax(z / T)", "at T = 1"): (classes, F.softmax(logits, 0).numpy()),
        ("loss of class 0 against T", "cross_entropy(z / T, 0)"): (t_grid.numpy(),
                                                                   np.array(curve)),
        ("loss of class 0 against T", "current T"): (np.array([t]), np.array([loss.item()])),
        ("gradient at T (autograd)", "d loss / d z_k"): (classes, grad.numpy()),
    }


def _margin_curves(num_classes: int, probs_first: bool = False, **kw):
    m = torch.linspace(-2.0, 12.0, 141, dtype=torch.float64)
    logits = torch.zeros(141, num_classes, dtype=torch.float64)
    logits[:, 0] = m
    logits.requires_grad_(True)
    inp = F.softmax(logits, 1) if probs_first else logits
    loss = F.cross_entropy(inp, torch.zeros(141, dtype=torch.long), reduction="none", **kw)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    return m.numpy(), loss.detach().numpy(), grad[:, 0].numpy()


def multiclass_smoothing(values: dict[str, str]) -> dict:
    eps = float(values["label smoothing ε"])
    c = 5
    xs, loss, grad = _margin_curves(c, label_smoothing=eps)
    _, plain_loss, plain_grad = _margin_curves(c)
    if eps > 0:
        # softmax equals the smoothed target when exp(m) = (1 - eps + eps/c) / (eps/c)
        best = np.log((1 - eps + eps / c) / (eps / c))
        logits = torch.zeros(1, c, dtype=torch.float64)
        logits[0, 0] = best
        best_point = (np.array([best]), np.array([
            F.cross_entropy(logits, torch.tensor([0]), label_smoothing=eps).item()]))
    else:
        best_point = (np.array([np.inf]), np.array([0.0]))
    return {
        ("loss against the margin", "label_smoothing = ε"): (xs, loss),
        ("loss against the margin", "no smoothing"): (xs, plain_loss),
        ("loss against the margin", "minimum"): best_point,
        ("gradient (autograd)", "label_smoothing = ε"): (xs, grad),
        ("gradient (autograd)", "no smoothing"): (xs, plain_grad),
    }


def multiclass_floor(values: dict[str, str]) -> dict:
    c = int(values["classes C"])
    xs, loss, grad = _margin_curves(c)
    _, wrong_loss, wrong_grad = _margin_curves(c, probs_first=True)
    counts = np.unique(np.round(np.logspace(np.log10(2), 3, 200)))
    # CE of a one-hot "probability" vector: the lowest loss the mistaken model can reach
    floors = np.array([F.cross_entropy(F.one_hot(torch.tensor([0]), int(k)).double(),
                                       torch.tensor([0])).item() for k in counts])
    floor_c = F.cross_entropy(F.one_hot(torch.tensor([0]), c).double(), torch.tensor([0])).item()
    return {
        ("loss against the margin", "CE on logits"): (xs, loss),
        ("loss against the margin", "CE on softmax(z)"): (xs, wrong_loss),
        ("loss against the margin", "floor log(1 + (C − 1)/e)"): (
            np.array([-2.0, 12.0]), np.full(2, floor_c)),
        ("gradient (autograd)", "CE on logits"): (xs, grad),
        ("gradient (autograd)", "CE on softmax(z)"): (xs, wrong_grad),
        ("the floor against the number of classes", "log(1 + (C − 1)/e)"): (
            np.log10(counts), floors),
        ("the floor against the number of classes", "current C"): (
            np.array([np.log10(c)]), np.array([floor_c])),
    }


# --- multi-label -------------------------------------------------------------------------------

def multilabel_sigmoid_softmax(values: dict[str, str]) -> dict:
    z_a, z_b = float(values["logit z_A"]), float(values["logit z_B"])
    t_a, t_b = float(values["threshold A"]), float(values["threshold B"])
    now = torch.tensor([z_a, z_b, -1.0], dtype=torch.float64)
    sweep = torch.linspace(-6.0, 6.0, 61, dtype=torch.float64)
    logits = torch.stack([sweep, torch.full_like(sweep, z_b), torch.full_like(sweep, -1.0)], 1)
    logits.requires_grad_(True)
    target = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64).expand(61, 3)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)
    ce = F.cross_entropy(logits, target / 2, reduction="none")
    (g_bce,) = torch.autograd.grad(bce.sum(), logits, retain_graph=True)
    (g_ce,) = torch.autograd.grad(ce.sum(), logits)
    xs = sweep.numpy()
    pos = np.arange(3.0)
    loss_panel = "loss as z_A moves (target A, B on; C off)"
    return {
        ("probabilities per label (A, B, C)", "σ(z), independent"): (
            pos, torch.sigmoid(now).numpy()),
        ("probabilities per label (A, B, C)", "softmax(z), one distribution"): (
            pos, F.softmax(now, 0).numpy()),
        ("probabilities per label (A, B, C)", "thresholds"): (pos, np.array([t_a, t_b, 0.5])),
        ("probabilities per label (A, B, C)", "A decision (1 = on)"): (
            np.array([-0.15]), np.array([float(torch.sigmoid(now[0]).item() >= t_a)])),
        ("probabilities per label (A, B, C)", "B decision (1 = on)"): (
            np.array([0.85]), np.array([float(torch.sigmoid(now[1]).item() >= t_b)])),
        (loss_panel, "BCE, independent sigmoids"): (xs, bce.detach().numpy()),
        (loss_panel, "CE, one softmax"): (xs, ce.detach().numpy()),
        ("gradient on z_A (autograd)", "BCE, independent sigmoids"): (xs, g_bce[:, 0].numpy()),
        ("gradient on z_A (autograd)", "CE, one softmax"): (xs, g_ce[:, 0].numpy()),
    }


# --- beyond the basics -------------------------------------------------------------------------

def beyond_focal(values: dict[str, str]) -> dict:
    gamma = float(values["γ (focusing)"])
    alpha = float(values["α (positive weight)"])
    y = 1.0 if _on(values["positive example (y = 1)"]) else 0.0
    p_t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    # the logit at which the true label has probability p_t
    z = torch.logit(p_t) if y == 1.0 else -torch.logit(p_t)
    target = torch.full_like(z, y)

    def ce(inp):
        return F.binary_cross_entropy_with_logits(inp, target, reduction="none")

    def focal(inp):
        prob_true = torch.sigmoid(inp) if y == 1.0 else 1 - torch.sigmoid(inp)
        alpha_t = alpha if y == 1.0 else 1 - alpha
        return alpha_t * (1 - prob_true) ** gamma * ce(inp)

    ce_loss, ce_grad = _grad(ce, z)
    fl_loss, fl_grad = _grad(focal, z)
    xs = p_t.numpy()
    grad_panel = "gradient in the logit (autograd)"
    return {
        ("loss against p_t", "cross-entropy"): (xs, ce_loss),
        ("loss against p_t", "focal (γ, α)"): (xs, fl_loss),
        (grad_panel, "cross-entropy"): (xs, ce_grad),
        (grad_panel, "focal (γ, α)"): (xs, fl_grad),
    }


_TEACHER = torch.tensor([[4.0, 1.5, 1.0, -0.5, -2.0]], dtype=torch.float64)
_STUDENTS = {
    "near the teacher": torch.tensor([[3.0, 2.0, 0.5, 0.0, -1.5]], dtype=torch.float64),
    "far from the teacher": torch.tensor([[0.0, 2.5, -1.0, 1.5, 0.5]], dtype=torch.float64),
}


def _kd(student, t):
    s = student.clone().requires_grad_(True)
    kl = F.kl_div(F.log_softmax(s / t, 1), F.softmax(_TEACHER / t, 1), reduction="batchmean")
    (g,) = torch.autograd.grad(kl, s)
    return kl.item(), g.norm().item()


def beyond_distillation(values: dict[str, str]) -> dict:
    t = float(values["temperature T"])
    student = _STUDENTS[values["student"]]
    grid = np.linspace(1.0, 10.0, 91)
    kl, gn = np.array([_kd(student, u) for u in grid]).T
    classes = np.arange(5.0)
    return {
        ("softened distributions at T", "teacher softmax(z_t / T)"): (
            classes, F.softmax(_TEACHER / t, 1)[0].numpy()),
        ("softened distributions at T", "student softmax(z_s / T)"): (
            classes, F.softmax(student / t, 1)[0].numpy()),
        ("distillation loss against T", "KL(teacher ‖ student)"): (grid, kl),
        ("distillation loss against T", "T² · KL"): (grid, grid**2 * kl),
        ("distillation loss against T", "current T"): (
            np.array([t]), np.array([t * t * _kd(student, t)[0]])),
        ("gradient size in the student logits", "KL(teacher ‖ student)"): (grid, gn),
        ("gradient size in the student logits", "T² · KL"): (grid, grid**2 * gn),
    }


# --- choosing a loss ---------------------------------------------------------------------------

def choosing_margins(values: dict[str, str]) -> dict:
    gamma = float(values["focal γ"])
    m = torch.linspace(-4.0, 4.0, 161, dtype=torch.float64)
    ones = torch.ones_like(m)

    def focal(inp):
        # y = +1, so p_t = sigmoid(m) and the focal factor is (1 - sigmoid(m))**gamma
        return (1 - torch.sigmoid(inp)) ** gamma * F.binary_cross_entropy_with_logits(
            inp, ones, reduction="none")

    fns = {
        "logistic (BCE with logits)": lambda inp: F.binary_cross_entropy_with_logits(
            inp, ones, reduction="none"),
        "hinge max(0, 1 − m)": lambda inp: torch.clamp(1 - inp, min=0),
        "focal (γ)": focal,
        "MSE on σ(z)": lambda inp: (torch.sigmoid(inp) - 1) ** 2,
    }
    out = {}
    xs = m.numpy()
    for label, fn in fns.items():
        loss, grad = _grad(fn, m)
        out[("loss", label)] = (xs, loss)
        out[("gradient (autograd)", label)] = (xs, grad)
    return out


# --- losses at scale ---------------------------------------------------------------------------

def scale_precision(values: dict[str, str]) -> dict:
    c = int(values["classes C"].replace(",", ""))
    m64 = torch.linspace(0.0, 16.0, 161, dtype=torch.float64)
    exact_logits = torch.cat([m64[:, None], torch.zeros(161, c - 1, dtype=torch.float64)], 1)
    exact = F.cross_entropy(exact_logits, torch.zeros(161, dtype=torch.long), reduction="none")
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16),
                        ("float16", torch.float16)):
        m = m64.to(dtype).requires_grad_(True)
        logits = torch.cat([m[:, None], torch.zeros(161, c - 1, dtype=dtype)], 1)
        loss = F.cross_entropy(logits, torch.zeros(161, dtype=torch.long), reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), m)
        out[("loss in each dtype", name)] = (m64.numpy(), loss.detach().double().numpy())
        out[("gradient in each dtype (autograd)", name)] = (m64.numpy(), grad.double().numpy())
        out[("loss error against float64", name)] = (
            m64.numpy(), loss.detach().double().numpy() - exact.numpy())
    return out


CHAPTER_EXPECTED = {
    "Binary cross-entropy from a logit": binary_bce,
    "Float32 binary cross-entropy: sigmoid then log against the stable form": binary_float32,
    "Softmax cross-entropy over three logits": multiclass_three_logits,
    "Softmax temperature": multiclass_temperature,
    "Label smoothing over 5 classes": multiclass_smoothing,
    "Softmax before CrossEntropyLoss: the loss floor": multiclass_floor,
    "Multi-label: independent sigmoids against one softmax": multilabel_sigmoid_softmax,
    "Focal loss against cross-entropy over p_t": beyond_focal,
    "Distillation loss against temperature": beyond_distillation,
    "Classification losses against the margin": choosing_margins,
    "Cross-entropy computed in float32, bfloat16 and float16": scale_precision,
}
