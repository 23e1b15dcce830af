"""Expected curves of the calibration chapter's and the training lab's widgets.

Each training run is repeated here with its own loop (plain ``torch.optim``, losses from
``torch.nn.functional``, the focal losses written out), from the same data and starting
parameters as the course (``losslab.losses.training`` only supplies those); bins and ECE
come from ``torchmetrics`` or numpy. Merged into ``expected_curves.EXPECTED``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from losslab.losses import fitting, training

f64 = torch.float64


# --- shared pieces ---------------------------------------------------------------------------

def forward(params, x):
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = h.tanh()
    return h


def adam_run(x, y, loss, hidden, out, steps, lr, seed, every, inputs):
    """Full-batch Adam from ``training.init_mlp``'s start; logits on ``inputs`` (and the
    parameters) at every ``every``-th step and the last."""
    with training.single_thread():  # small tensors: extra threads only contend
        return _adam_run(x, y, loss, hidden, out, steps, lr, seed, every, inputs)


def _adam_run(x, y, loss, hidden, out, steps, lr, seed, every, inputs):
    params = [p.requires_grad_(True) for p in training.init_mlp(x.shape[1], hidden, out, seed)]
    opt = torch.optim.Adam(params, lr=lr)
    kept_steps, kept_params, kept_out = [], [], []

    def logits(inp):
        z = forward(params, inp)
        return z[:, 0] if out == 1 else z

    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            kept_steps.append(step)
            kept_params.append([p.detach().clone() for p in params])
            with torch.no_grad():
                kept_out.append([logits(inp) for inp in inputs])
        if step == steps:
            break
        opt.zero_grad()
        loss(logits(x), y).backward()
        opt.step()
    return kept_steps, kept_params, kept_out


def numpy_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int):
    """Mean confidence and accuracy per equal-width bin (NaN when empty)."""
    idx = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    conf = np.full(n_bins, np.nan)
    acc = np.full(n_bins, np.nan)
    for b in range(n_bins):
        members = idx == b
        if members.any():
            conf[b] = confidence[members].mean()
            acc[b] = correct[members].mean()
    return conf, acc


def top_label(logits: torch.Tensor, y: torch.Tensor, t: float = 1.0):
    p = torch.softmax(logits / t, dim=1)
    conf, pred = p.max(dim=1)
    return conf.numpy(), (pred == y).double().numpy()


def tm_ece(logits: torch.Tensor, y: torch.Tensor, t: float = 1.0, n_bins: int = 15) -> float:
    return multiclass_calibration_error(torch.softmax(logits / t, dim=1), y,
                                        num_classes=logits.shape[1], n_bins=n_bins,
                                        norm="l1").item()


# --- the calibration chapter -------------------------------------------------------------------

def focal(z, t, gamma):
    p_t = torch.softmax(z, dim=1).gather(1, t[:, None])[:, 0]
    return (-(1 - p_t) ** gamma * p_t.log()).mean()


CAL_LOSSES = {
    "cross-entropy": lambda z, t: F.cross_entropy(z, t),
    "label smoothing 0.1": lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1),
    "focal γ = 2": lambda z, t: focal(z, t, 2.0),
}


@functools.cache
def calibration_model(name: str):
    c = training.CALIBRATION
    x, y, xv, yv, xt, yt = training.calibration_data()
    _, _, outs = adam_run(x, y, CAL_LOSSES[name], c["hidden"], 3, c["steps"], c["lr"],
                          c["seed"], c["steps"], [xv, xt])
    z_val, z_test = outs[-1]
    # The temperature that minimises the validation NLL: LBFGS on log T.
    log_t = torch.zeros((), dtype=f64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, tolerance_grad=1e-14,
                            tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = F.cross_entropy(z_val / log_t.exp(), yv)
        value.backward()
        return value

    opt.step(closure)
    return z_test, yt, log_t.exp().item()


@functools.cache
def calibration_curves(name: str):
    z, y, _ = calibration_model(name)
    ts = torch.linspace(0.5, 4.0, 71, dtype=f64)
    nll, grad, ece = [], [], []
    for t in ts.tolist():
        temp = torch.tensor(t, dtype=f64, requires_grad=True)
        value = F.cross_entropy(z / temp, y)
        (g,) = torch.autograd.grad(value, temp)
        nll.append(value.item())
        grad.append(g.item())
        ece.append(tm_ece(z, y, t))
    return ts.numpy(), np.array(nll), np.array(grad), np.array(ece)


def temperature_explorer(values: dict[str, str]) -> dict:
    name = values["trained with"]
    t = float(values["temperature T"])
    z, y, fitted = calibration_model(name)
    ts, nll, grad, ece = calibration_curves(name)
    i = int(np.argmin(np.abs(ts - t)))
    one = np.array([t])
    rel = "reliability diagram (test set)"
    scores = "test NLL and ECE against T"
    return {
        (rel, "perfect calibration"): (np.array([0.0, 1.0]), np.array([0.0, 1.0])),
        (rel, "bins at T = 1"): numpy_bins(*top_label(z, y), 10),
        (rel, "bins at T"): numpy_bins(*top_label(z, y, t), 10),
        (scores, "NLL"): (ts, nll),
        (scores, "ECE (15 bins)"): (ts, ece),
        (scores, "NLL at T"): (one, np.array([nll[i]])),
        (scores, "ECE at T"): (one, np.array([ece[i]])),
        (scores, "T fitted on validation"): (np.array([fitted, fitted]), np.array([0.0, 1.45])),
        ("d NLL / d T", "autograd"): (ts, grad),
        ("d NLL / d T", "closed form"): (ts, grad),
        ("d NLL / d T", "at T"): (one, np.array([grad[i]])),
    }


# --- the training lab: a line ------------------------------------------------------------------

LINE_LOSSES = {"MSE": lambda p, t, d: F.mse_loss(p, t), "L1": lambda p, t, d: F.l1_loss(p, t),
               "Huber": lambda p, t, d: F.huber_loss(p, t, delta=d)}


@functools.cache
def line_run(name: str, delta: float):
    with training.single_thread():
        return _line_run(name, delta)


def _line_run(name: str, delta: float):
    c = training.LINE
    x, y = fitting.line_data(n=c["n"], n_outliers=c["n_outliers"],
                             outlier_shift=c["outlier_shift"], seed=c["seed"])
    w = torch.zeros((), dtype=f64, requires_grad=True)
    b = torch.zeros((), dtype=f64, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=c["lr"], momentum=0.9)
    lines, losses = [], []
    for step in range(c["steps"] + 1):
        loss = LINE_LOSSES[name](w * x + b, y, delta)
        lines.append((w.item(), b.item()))
        losses.append(loss.item())
        if step == c["steps"]:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x.numpy(), y.numpy(), np.array(lines), np.array(losses)


def line_fits(values: dict[str, str]) -> dict:
    step = int(values["training step"])
    delta = float(values["Huber δ"])
    x, y, _, _ = line_run("MSE", 1.0)
    ends = np.array([x.min(), x.max()])
    fits, rel = "data and the line at this step", "training loss / its value at step 0"
    out = {
        (fits, "data (4 outliers)"): (x, y),
        (fits, "true line y = 2x + 1"): (ends, 2 * ends + 1),
    }
    for name, label, d in (("MSE", "MSE", 1.0), ("L1", "L1", 1.0), ("Huber", "Huber(δ)", delta)):
        _, _, lines, losses = line_run(name, d)
        w, b = lines[step]
        out[(fits, label)] = (ends, w * ends + b)
        out[(rel, label)] = (np.arange(len(losses), dtype=float), losses / losses[0])
        now = "Huber now" if name == "Huber" else f"{name} now"
        out[(rel, now)] = (np.array([float(step)]), np.array([losses[step] / losses[0]]))
    return out


# --- the training lab: an imbalanced classifier ------------------------------------------------

BOX = (-4.5, 4.5, -3.5, 4.0)


def sigmoid_focal(z, t, gamma):
    p = torch.sigmoid(z)
    p_t = p * t + (1 - p) * (1 - t)
    return ((1 - p_t) ** gamma * F.binary_cross_entropy_with_logits(z, t, reduction="none")).mean()


@functools.cache
def classifier_run(loss: str, gamma: float):
    c = training.IMBALANCE
    x, y, xv, yv = training.imbalance_data()
    fns = {
        "cross-entropy": lambda z, t: F.binary_cross_entropy_with_logits(z, t),
        "weighted cross-entropy (pos_weight 9)": lambda z, t: F.binary_cross_entropy_with_logits(
            z, t, pos_weight=torch.tensor(c["n_major"] / c["n_minor"], dtype=f64)),
        "focal loss (γ below)": lambda z, t: sigmoid_focal(z, t, gamma),
    }
    steps, params, outs = adam_run(x, y, fns[loss], 0, 1, c["steps"], c["lr"], c["seed"],
                                   c["record_every"], [xv])
    yv = yv.numpy()
    recall = []
    for o in outs:
        pred = (o[0].numpy() > 0).astype(int)
        recall.append([(pred[yv == c_] == c_).mean() for c_ in (0, 1)])
    return steps, params, np.array(recall)


def clip_to_box(w0: float, w1: float, b: float):
    """End points of w0 x + w1 y + b = 0 inside BOX, sorted by x, or NaN."""
    x0, x1, y0, y1 = BOX
    hits = []
    for xe in (x0, x1):
        if w1 != 0:
            ye = -(w0 * xe + b) / w1
            if y0 <= ye <= y1:
                hits.append((xe, ye))
    for ye in (y0, y1):
        if w0 != 0:
            xe = -(w1 * ye + b) / w0
            if x0 <= xe <= x1:
                hits.append((xe, ye))
    hits = sorted(set((round(a, 12), round(c, 12)) for a, c in hits))
    if len(hits) < 2:
        return np.full(2, np.nan), np.full(2, np.nan)
    return np.array([hits[0][0], hits[-1][0]]), np.array([hits[0][1], hits[-1][1]])


def imbalanced_classifier(values: dict[str, str]) -> dict:
    step = int(values["training step"])
    loss = values["loss"]
    gamma = float(values["focal γ"])
    x, y, _, _ = training.imbalance_data()
    steps, params, recall = classifier_run(loss, gamma if loss.startswith("focal") else 2.0)
    k = steps.index(step)
    _, ce_params, _ = classifier_run("cross-entropy", 2.0)
    major, minor = x[y == 0].numpy(), x[y == 1].numpy()
    scatter, rec = "training data and the decision boundary", "held-out recall per class"
    s = np.array(steps, dtype=float)

    def segment(p):
        w, b = p
        return clip_to_box(w[0, 0].item(), w[1, 0].item(), b[0].item())

    return {
        (scatter, "class 0 (450 points)"): (major[:, 0], major[:, 1]),
        (scatter, "class 1 (50 points)"): (minor[:, 0], minor[:, 1]),
        (scatter, "boundary, plain cross-entropy"): segment(ce_params[k]),
        (scatter, "boundary, chosen loss"): segment(params[k]),
        (rec, "class 0"): (s, recall[:, 0]),
        (rec, "class 1 (rare)"): (s, recall[:, 1]),
        (rec, "class 0 now"): (np.array([float(step)]), recall[k:k + 1, 0]),
        (rec, "class 1 now"): (np.array([float(step)]), recall[k:k + 1, 1]),
    }


# --- the training lab: noisy labels ------------------------------------------------------------

@functools.cache
def noisy_run(eps: float):
    c = training.NOISY
    x, y, xv, yv = training.noisy_data()
    steps, _, outs = adam_run(x, y, lambda z, t: F.cross_entropy(z, t, label_smoothing=eps),
                              c["hidden"], 2, c["steps"], c["lr"], c["seed"], c["record_every"],
                              [x, xv])
    train = np.array([F.cross_entropy(o[0], y).item() for o in outs])
    held = np.array([F.cross_entropy(o[1], yv).item() for o in outs])
    ece = np.array([tm_ece(o[1], yv) for o in outs])
    bins = [numpy_bins(*top_label(o[1], yv), 10) for o in outs]
    return steps, train, held, ece, bins


def noisy_labels(values: dict[str, str]) -> dict:
    step = int(values["training step"])
    eps = float(values["label_smoothing"])
    steps, train, held, ece, bins = noisy_run(eps)
    _, _, held0, ece0, _ = noisy_run(0.0)
    k = steps.index(step)
    s = np.array(steps, dtype=float)
    one = np.array([float(step)])
    nll, e, rel = ("NLL on training and held-out data", "held-out ECE",
                   "held-out reliability at this step")
    return {
        (nll, "training NLL"): (s, train),
        (nll, "held-out NLL"): (s, held),
        (nll, "held-out NLL, no smoothing"): (s, held0),
        (nll, "training NLL now"): (one, train[k:k + 1]),
        (nll, "held-out NLL now"): (one, held[k:k + 1]),
        (e, "ECE"): (s, ece),
        (e, "ECE, no smoothing"): (s, ece0),
        (e, "ECE now"): (one, ece[k:k + 1]),
        (rel, "perfect calibration"): (np.array([0.0, 1.0]), np.array([0.0, 1.0])),
        (rel, "bins"): bins[k],
    }


LAB_EXPECTED = {
    "Temperature scaling: reliability, NLL and ECE": temperature_explorer,
    "Fitting a line with outliers, step by step": line_fits,
    "An imbalanced classifier under three losses": imbalanced_classifier,
    "Noisy labels with and without label smoothing": noisy_labels,
}
