"""The training lab's figures: sliders that scrub through training runs computed at build time
(``losslab.losses.training``), showing what each loss does to the model."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..engine import widgets
from ..losses import calibration, training

DELTAS = [0.5, 1.0, 2.0, 4.0]
GAMMAS = [0.5, 1.0, 2.0, 5.0]
SMOOTHING = [0.0, 0.1, 0.2, 0.3]
CLASSIFIER_LOSSES = {"cross-entropy": "CE", "weighted cross-entropy (pos_weight 9)": "weighted CE",
                     "focal loss (γ below)": "focal"}
#: The square the classifier's data and decision boundary are drawn in.
BOX = (-4.5, 4.5, -3.5, 4.0)
N_BINS = 10


# --- 1. a line under MSE, L1 and Huber ------------------------------------------------------

@functools.cache
def line_run(name: str, delta: float = 1.0) -> training.LineRun:
    return training.line_lab(name, delta)[2]


def line_fits() -> widgets.Figure:
    """The fitted lines at each step, and each training loss relative to its start."""
    with training.single_thread():
        return _line_fits()


def _line_fits() -> widgets.Figure:
    x, y, _ = training.line_lab("MSE")
    steps = list(range(training.LINE["steps"] + 1))
    ends = np.array([float(x.min()), float(x.max())])
    s = np.array(steps, dtype=float)

    def line(name):
        def at(step, delta=1.0):
            w, b = line_run(name, delta).params[step].tolist()
            return w * ends + b
        return at

    def relative(name):
        def curve(delta=1.0):
            loss = line_run(name, delta).loss.numpy()
            return loss / loss[0]
        return curve

    def now(name):
        def at(step, delta=1.0):
            return np.array([relative(name)(delta)[step]])
        return at

    fits = widgets.Panel(
        "data and the line at this step", "x", "y",
        [
            widgets.Series("data (4 outliers)", x.numpy(), y.numpy(), kind="points", color=5),
            widgets.Series("true line y = 2x + 1", ends, 2 * ends + 1, style="dotted", color=5),
            widgets.Series("MSE", ends, line("MSE"), ("step",), color=0),
            widgets.Series("L1", ends, line("L1"), ("step",), color=1),
            widgets.Series("Huber(δ)", ends, line("Huber"), ("step", "delta"), style="dashed",
                           color=2),
        ],
        # every line of every step and δ fits in (from -2.8 to 29.3)
        xlim=(-0.1, 5.1), ylim=(-3.5, 30.5),
    )
    losses = widgets.Panel(
        "training loss / its value at step 0", "step", "loss / loss at step 0",
        [
            widgets.Series("MSE", s, relative("MSE"), color=0),
            widgets.Series("L1", s, relative("L1"), color=1),
            widgets.Series("Huber(δ)", s, relative("Huber"), ("delta",), style="dashed", color=2),
            widgets.Series("MSE now", lambda step, **_: np.array([float(step)]), now("MSE"),
                           ("step",), kind="points", color=0),
            widgets.Series("L1 now", lambda step, **_: np.array([float(step)]), now("L1"),
                           ("step",), kind="points", color=1),
            widgets.Series("Huber now", lambda step, delta: np.array([float(step)]),
                           now("Huber"), ("step", "delta"), kind="points", color=2),
        ],
        xlim=(0.0, float(steps[-1])), ylim=(0.0, 1.05),
    )
    return widgets.figure(
        [fits, losses],
        [
            widgets.slider("step", steps, label="training step", value=steps[-1]),
            widgets.slider("delta", DELTAS, label="Huber δ", value=1.0),
        ],
        title="Fitting a line with outliers, step by step",
    )


# --- 2. an imbalanced classifier under CE, weighted CE and focal loss ------------------------

@functools.cache
def classifier_run(loss: str, gamma: float = 2.0) -> training.Run:
    return training.imbalance_lab(loss, gamma if loss == "focal" else 2.0)


def boundary(loss: str, gamma: float, k: int) -> np.ndarray:
    """The decision boundary's two end points inside ``BOX`` at recorded step ``k``:
    ``[[xa, xb], [ya, yb]]`` (NaN where it misses the box)."""
    w, b = classifier_run(loss, gamma).params[k]
    return training.boundary_segment(w[:, 0], b[0], BOX).T.numpy()


@functools.cache
def recalls(loss: str, gamma: float) -> np.ndarray:
    """Held-out recall of class 0 and class 1 at each recorded step: (steps, 2)."""
    _, _, _, y_held = training.imbalance_data()
    z = classifier_run(loss, gamma).outputs["held_out"]
    return training.recall_per_class((z > 0).long(), y_held, 2).numpy()


def imbalanced_classifier() -> widgets.Figure:
    """Data with the boundary at a step, and held-out recall per class over training."""
    with training.single_thread():
        return _imbalanced_classifier()


def _imbalanced_classifier() -> widgets.Figure:
    x, y, _, _ = training.imbalance_data()
    steps = classifier_run("CE").steps
    index = {s: i for i, s in enumerate(steps)}
    names = list(CLASSIFIER_LOSSES)

    def drawn(part):
        def at(step, loss, gamma):
            return boundary(CLASSIFIER_LOSSES[loss], gamma, index[step])[part]
        return at

    def ce_drawn(part):
        def at(step):
            return boundary("CE", 2.0, index[step])[part]
        return at

    def recall(c):
        def curve(loss, gamma):
            return recalls(CLASSIFIER_LOSSES[loss], gamma)[:, c]
        return curve

    def recall_now(c):
        def at(step, loss, gamma):
            return np.array([recalls(CLASSIFIER_LOSSES[loss], gamma)[index[step], c]])
        return at

    major, minor = x[y == 0].numpy(), x[y == 1].numpy()
    scatter = widgets.Panel(
        "training data and the decision boundary", "feature 1", "feature 2",
        [
            widgets.Series("class 0 (450 points)", major[:, 0], major[:, 1], kind="points",
                           color=5),
            widgets.Series("class 1 (50 points)", minor[:, 0], minor[:, 1], kind="points",
                           color=1),
            widgets.Series("boundary, plain cross-entropy", ce_drawn(0), ce_drawn(1), ("step",),
                           style="dotted", color=4),
            widgets.Series("boundary, chosen loss", drawn(0), drawn(1),
                           ("step", "loss", "gamma"), color=0),
        ],
        xlim=BOX[:2], ylim=BOX[2:], xname="feature 1",
    )
    s = np.array(steps, dtype=float)
    recall_panel = widgets.Panel(
        "held-out recall per class", "step", "recall",
        [
            widgets.Series("class 0", s, recall(0), ("loss", "gamma"), color=5),
            widgets.Series("class 1 (rare)", s, recall(1), ("loss", "gamma"), color=1),
            widgets.Series("class 0 now", lambda step, **_: np.array([float(step)]), recall_now(0),
                           ("step", "loss", "gamma"), kind="points", color=5),
            widgets.Series("class 1 now", lambda step, **_: np.array([float(step)]), recall_now(1),
                           ("step", "loss", "gamma"), kind="points", color=1),
        ],
        xlim=(0.0, float(steps[-1])), ylim=(-0.02, 1.02),
    )
    return widgets.figure(
        [scatter, recall_panel],
        [
            widgets.slider("step", steps, label="training step", value=steps[-1]),
            widgets.dropdown("loss", names, label="loss"),
            widgets.slider("gamma", GAMMAS, label="focal γ", value=2.0),
        ],
        title="An imbalanced classifier under three losses",
    )


# --- 3. noisy labels, with and without label smoothing ---------------------------------------

@functools.cache
def noisy_run(smoothing: float) -> training.Run:
    return training.noisy_lab(smoothing)


@functools.cache
def noisy_curves(smoothing: float) -> dict[str, np.ndarray]:
    """Per recorded step: training NLL, held-out NLL and held-out ECE (15 bins)."""
    _, y, _, y_held = training.noisy_data()
    run = noisy_run(smoothing)
    train_nll = [calibration.nll(z, y).item() for z in run.outputs["train"]]
    held = [calibration.nll(z, y_held).item() for z in run.outputs["held_out"]]
    ece = [calibration.multiclass_ece(z, y_held).item() for z in run.outputs["held_out"]]
    return {"train": np.array(train_nll), "held_out": np.array(held), "ece": np.array(ece)}


@functools.cache
def noisy_bins(smoothing: float, k: int) -> calibration.Bins:
    """Held-out reliability bins at recorded step ``k`` (as numpy arrays)."""
    _, _, _, y_held = training.noisy_data()
    z = noisy_run(smoothing).outputs["held_out"][k]
    conf, correct = calibration.top_label(torch.softmax(z, dim=1), y_held)
    b = calibration.reliability(conf, correct, N_BINS)
    return calibration.Bins(b.confidence.numpy(), b.accuracy.numpy(), b.share.numpy())


def noisy_labels() -> widgets.Figure:
    """Training against held-out NLL, held-out ECE, and the reliability diagram at a step."""
    with training.single_thread():
        return _noisy_labels()


def _noisy_labels() -> widgets.Figure:
    steps = noisy_run(0.0).steps
    index = {s: i for i, s in enumerate(steps)}
    s = np.array(steps, dtype=float)

    def now(key):
        def at(step, smoothing):
            return np.array([noisy_curves(smoothing)[key][index[step]]])
        return at

    def at_step(step, **_):
        return np.array([float(step)])

    loss_panel = widgets.Panel(
        "NLL on training and held-out data", "step", "NLL (nats)",
        [
            widgets.Series("training NLL", s, lambda smoothing: noisy_curves(smoothing)["train"],
                           ("smoothing",), color=0),
            widgets.Series("held-out NLL", s,
                           lambda smoothing: noisy_curves(smoothing)["held_out"],
                           ("smoothing",), color=1),
            widgets.Series("held-out NLL, no smoothing", s, noisy_curves(0.0)["held_out"],
                           style="dotted", color=1),
            widgets.Series("training NLL now", at_step, now("train"), ("step", "smoothing"),
                           kind="points", color=0),
            widgets.Series("held-out NLL now", at_step, now("held_out"), ("step", "smoothing"),
                           kind="points", color=1),
        ],
        xlim=(0.0, float(steps[-1])),
    )
    ece_panel = widgets.Panel(
        "held-out ECE", "step", "ECE (15 bins)",
        [
            widgets.Series("ECE", s, lambda smoothing: noisy_curves(smoothing)["ece"],
                           ("smoothing",), color=2),
            widgets.Series("ECE, no smoothing", s, noisy_curves(0.0)["ece"], style="dotted",
                           color=2),
            widgets.Series("ECE now", at_step, now("ece"), ("step", "smoothing"), kind="points",
                           color=2),
        ],
        xlim=(0.0, float(steps[-1])),
    )
    diagonal = np.array([0.0, 1.0])

    def bins(step, smoothing):
        return noisy_bins(smoothing, index[step])

    reliability = widgets.Panel(
        "held-out reliability at this step", "confidence (mean per bin)", "accuracy in the bin",
        [
            widgets.Series("perfect calibration", diagonal, diagonal, style="dotted", color=5),
            widgets.Series("bins", lambda step, smoothing: bins(step, smoothing).confidence,
                           lambda step, smoothing: bins(step, smoothing).accuracy,
                           ("step", "smoothing"), kind="points", color=0),
        ],
        xlim=(0.0, 1.0), ylim=(0.0, 1.0), xname="confidence",
    )
    return widgets.figure(
        [loss_panel, ece_panel, reliability],
        [
            widgets.slider("step", steps, label="training step", value=steps[-1]),
            widgets.slider("smoothing", SMOOTHING, label="label_smoothing", value=0.0),
        ],
        title="Noisy labels with and without label smoothing",
    )
