"""Training runs for the training lab and the calibration chapter: what a loss does to a model.

Everything here is plain torch with fixed seeds, full-batch steps and no widgets: the figure
modules only draw what these functions return. Each run records its parameters (or the
model's outputs on given inputs) at every step, so a slider can scrub through training.
Tensors keep the device and dtype of the data they are given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import beyond

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block, and restore the thread count after.

    The runs here are thousands of operations on tensors of a few thousand numbers: their
    time is dispatch, not arithmetic, and extra threads only wait on one another (on a busy
    machine, one operation took milliseconds instead of microseconds).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- a line under a regression loss -------------------------------------------------------------

def regression_loss(name: str, delta: float = 1.0) -> LossFn:
    """The elementwise loss ``name`` ("MSE", "L1" or "Huber") as ``fn(pred, target)``."""
    if name == "MSE":
        return lambda p, t: F.mse_loss(p, t, reduction="none")
    if name == "L1":
        return lambda p, t: F.l1_loss(p, t, reduction="none")
    if name == "Huber":
        if not delta > 0:
            raise ValueError(f"Huber's delta must be positive; got {delta}")
        return lambda p, t: F.huber_loss(p, t, reduction="none", delta=delta)
    raise ValueError(f"loss must be 'MSE', 'L1' or 'Huber'; got {name!r}")


@dataclass
class LineRun:
    """``params[e]`` is ``[w, b]`` before step ``e`` (``e = 0`` is the start) and
    ``loss[e]`` the training loss there; both have ``steps + 1`` rows."""

    params: torch.Tensor
    loss: torch.Tensor


def fit_line_steps(x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, steps: int = 60,
                   lr: float = 0.05, momentum: float = 0.9) -> LineRun:
    """Fit ``y ≈ w x + b`` from ``w = b = 0`` by full-batch SGD with momentum, recording each step.

    ``x``, ``y``: 1-D float tensors of one length; ``loss_fn(pred, target)`` is elementwise
    and averaged over the points.
    """
    if x.dim() != 1 or x.shape != y.shape or not x.is_floating_point():
        raise ValueError("x and y must be 1-D float tensors of one length; "
                         f"got {tuple(x.shape)} {x.dtype} and {tuple(y.shape)} {y.dtype}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    with single_thread():
        return _fit_line_steps(x, y, loss_fn, steps, lr, momentum)


def _fit_line_steps(x, y, loss_fn, steps, lr, momentum) -> LineRun:
    params = torch.zeros(2, dtype=x.dtype, device=x.device, requires_grad=True)
    opt = torch.optim.SGD([params], lr=lr, momentum=momentum)
    history, losses = [], []
    for step in range(steps + 1):
        loss = loss_fn(params[0] * x + params[1], y).mean()
        history.append(params.detach().clone())
        losses.append(loss.detach())
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return LineRun(torch.stack(history), torch.stack(losses))


def line_distance(params: torch.Tensor, slope: float, intercept: float, x: torch.Tensor
                  ) -> torch.Tensor:
    """Root-mean-square vertical gap between each fitted line ``params[..., :]`` and the true
    line over the points ``x``: how far a fit is from the line the clean data came from."""
    pred = params[..., :1] * x + params[..., 1:]
    return ((pred - (slope * x + intercept)) ** 2).mean(dim=-1).sqrt()


# --- a small classifier -------------------------------------------------------------------------

def two_blobs(n_major: int, n_minor: int, seed: int, shift: float = 2.0,
              dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Two overlapping Gaussian classes in 2-D: class 0 (``n_major`` points) around
    ``(-shift/2, 0)``, class 1 (``n_minor``) around ``(shift/2, 0.5)``, unit spread.

    Returns ``x`` (N, 2) and ``y`` (N,) of 0/1 floats, shuffled by ``seed``.
    """
    if n_major < 1 or n_minor < 1:
        raise ValueError(f"each class needs at least one point; got {n_major} and {n_minor}")
    gen = torch.Generator().manual_seed(seed)
    major = torch.randn(n_major, 2, generator=gen, dtype=dtype) + torch.tensor(
        [-shift / 2, 0.0], dtype=dtype)
    minor = torch.randn(n_minor, 2, generator=gen, dtype=dtype) + torch.tensor(
        [shift / 2, 0.5], dtype=dtype)
    x = torch.cat([major, minor])
    y = torch.cat([torch.zeros(n_major, dtype=dtype), torch.ones(n_minor, dtype=dtype)])
    order = torch.randperm(len(y), generator=gen)
    return x[order], y[order]


def three_blobs(n: int, seed: int, spread: float = 1.0, dtype: torch.dtype = torch.float64
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of three overlapping Gaussian classes in 2-D (centres on a circle of
    radius 1.5, spread ``spread``). Returns ``x`` (n, 2) and class indices ``y`` (n,)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    angles = torch.tensor([0.0, 2.0944, 4.1888], dtype=dtype)
    centres = 1.5 * torch.stack([angles.cos(), angles.sin()], dim=1)
    x = centres[y] + spread * torch.randn(n, 2, generator=gen, dtype=dtype)
    return x, y


def flip_labels(y: torch.Tensor, rate: float, num_classes: int, seed: int) -> torch.Tensor:
    """A copy of the class indices ``y`` where a share ``rate`` of them, chosen by ``seed``,
    is replaced by another class drawn uniformly (never the same one)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must lie in [0, 1]; got {rate}")
    gen = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(y), generator=gen) < rate
    other = (y + torch.randint(1, num_classes, (len(y),), generator=gen)) % num_classes
    return torch.where(flip, other, y)


def init_mlp(in_features: int, hidden: int, out_features: int, seed: int,
             dtype: torch.dtype = torch.float64, device=None) -> list[torch.Tensor]:
    """Parameters of a one-hidden-layer tanh network (``hidden = 0``: a linear model),
    initialised like ``nn.Linear`` from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [in_features, hidden, out_features] if hidden else [in_features, out_features]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = fan_in ** -0.5
        for shape in ((fan_in, fan_out), (fan_out,)):
            params.append(((torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * bound)
                          .to(device))
    return params


def mlp(params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The network of :func:`init_mlp` applied to ``x`` (N, in): logits (N, out)."""
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = torch.tanh(h)
    return h


@dataclass
class Run:
    """A recorded training run: ``params[k]`` holds the parameters at step ``steps[k]``,
    ``train_loss[k]`` the training loss there, and ``outputs[name][k]`` the logits on the
    evaluation input ``name`` there."""

    steps: list[int]
    params: list[list[torch.Tensor]]
    train_loss: torch.Tensor
    outputs: dict[str, torch.Tensor]


def train(x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, *, hidden: int, out_features: int,
          steps: int, lr: float, seed: int, record_every: int = 1,
          evaluate: dict[str, torch.Tensor] | None = None,
          weight_decay: float = 0.0) -> Run:
    """Train :func:`mlp` on ``(x, y)`` under ``loss_fn(logits, y)`` (a scalar) by full-batch
    Adam for ``steps`` steps, recording every ``record_every`` steps and at the end.

    With ``out_features = 1`` the logits are squeezed to (N,) before the loss, so binary
    losses take them directly.
    """
    if steps < 1 or record_every < 1:
        raise ValueError(f"steps and record_every must be at least 1; got {steps}, {record_every}")
    with single_thread():
        return _train(x, y, loss_fn, hidden, out_features, steps, lr, seed, record_every,
                      evaluate or {}, weight_decay)


def _train(x, y, loss_fn, hidden, out_features, steps, lr, seed, record_every, evaluate,
           weight_decay) -> Run:
    params = [p.requires_grad_(True) for p in init_mlp(
        x.shape[1], hidden, out_features, seed, x.dtype, x.device)]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    def logits(inp):
        out = mlp(params, inp)
        return out[:, 0] if out_features == 1 else out

    recorded, saved, losses = [], [], []
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in evaluate}
    for step in range(steps + 1):
        loss = loss_fn(logits(x), y)
        if step % record_every == 0 or step == steps:
            recorded.append(step)
            saved.append([p.detach().clone() for p in params])
            losses.append(loss.detach())
            with torch.no_grad():
                for name, inp in evaluate.items():
                    outputs[name].append(logits(inp))
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Run(recorded, saved, torch.stack(losses),
               {name: torch.stack(v) for name, v in outputs.items()})


def binary_loss(name: str, *, pos_weight: float | None = None, gamma: float = 2.0) -> LossFn:
    """A binary loss on one logit per example: "CE" (BCE with logits), "weighted CE"
    (BCE with ``pos_weight``) or "focal" (sigmoid focal loss, no α, focusing ``gamma``)."""
    if name == "CE":
        return lambda z, t: F.binary_cross_entropy_with_logits(z, t)
    if name == "weighted CE":
        if pos_weight is None or not pos_weight > 0:
            raise ValueError(f"weighted CE needs a positive pos_weight; got {pos_weight}")
        weight = torch.tensor(pos_weight)
        return lambda z, t: F.binary_cross_entropy_with_logits(
            z, t, pos_weight=weight.to(z.device, z.dtype))
    if name == "focal":
        return lambda z, t: beyond.sigmoid_focal_loss(z, t, alpha=None, gamma=gamma)
    raise ValueError(f"loss must be 'CE', 'weighted CE' or 'focal'; got {name!r}")


def recall_per_class(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Share of each class's examples predicted as that class: ``(..., num_classes)`` for
    predictions ``pred`` (..., N) and labels ``y`` (N,), both class indices."""
    y = y.long()
    out = []
    for c in range(num_classes):
        members = y == c
        if not members.any():
            raise ValueError(f"class {c} has no examples, so its recall is undefined")
        out.append((pred[..., members] == c).double().mean(dim=-1))
    return torch.stack(out, dim=-1)


def boundary_segment(w: torch.Tensor, b: torch.Tensor, box: tuple[float, float, float, float]
                     ) -> torch.Tensor:
    """The part of the line ``w[0] x + w[1] y + b = 0`` inside ``box = (x0, x1, y0, y1)``:
    its two end points as a (2, 2) tensor ``[[xa, ya], [xb, yb]]``, or NaN where the line
    misses the box (or ``w`` is zero)."""
    x0, x1, y0, y1 = box
    w0, w1, b = float(w[0]), float(w[1]), float(b)
    points = []
    if w1 != 0.0:
        for xe in (x0, x1):
            ye = -(w0 * xe + b) / w1
            if y0 <= ye <= y1:
                points.append((xe, ye))
    if w0 != 0.0:
        for ye in (y0, y1):
            xe = -(w1 * ye + b) / w0
            if x0 <= xe <= x1:
                points.append((xe, ye))
    unique = []
    for p in points:
        if all(abs(p[0] - q[0]) > 1e-12 or abs(p[1] - q[1]) > 1e-12 for q in unique):
            unique.append(p)
    if len(unique) < 2:
        return torch.full((2, 2), float("nan"), dtype=torch.float64)
    unique.sort()
    return torch.tensor([unique[0], unique[-1]], dtype=torch.float64)


# --- the course's three experiments (fixed data, seeds and settings) ----------------------------

LINE = {"n": 30, "n_outliers": 4, "outlier_shift": 15.0, "seed": 0, "steps": 100, "lr": 0.02}
IMBALANCE = {"n_major": 450, "n_minor": 50, "seed": 3, "held_out_seed": 1, "steps": 150,
             "lr": 0.05, "record_every": 3}
NOISY = {"n_per_class": 150, "shift": 3.0, "flip": 0.2, "seed": 0, "held_out_seed": 1,
         "hidden": 64, "steps": 300, "lr": 0.02, "record_every": 6}


def line_lab(name: str, delta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, LineRun]:
    """The line experiment: 30 points on y = 2x + 1 with the 4 largest-x points moved up by
    15, fitted under ``name`` (MSE, L1 or Huber with ``delta``). Returns ``(x, y, run)``."""
    from . import fitting

    x, y = fitting.line_data(n=LINE["n"], n_outliers=LINE["n_outliers"],
                             outlier_shift=LINE["outlier_shift"], seed=LINE["seed"])
    return x, y, fit_line_steps(x, y, regression_loss(name, delta), steps=LINE["steps"],
                                lr=LINE["lr"])


def imbalance_data() -> tuple[torch.Tensor, ...]:
    """Training (450 of class 0, 50 of class 1) and held-out data (ten times as many) of the
    imbalanced experiment: ``x, y, x_held_out, y_held_out``."""
    c = IMBALANCE
    x, y = two_blobs(c["n_major"], c["n_minor"], seed=c["seed"])
    xv, yv = two_blobs(10 * c["n_major"], 10 * c["n_minor"], seed=c["held_out_seed"])
    return x, y, xv, yv


def imbalance_lab(name: str, gamma: float = 2.0) -> Run:
    """A linear classifier (one logit) trained on :func:`imbalance_data` under ``name``
    ("CE", "weighted CE" with ``pos_weight`` = negatives / positives, or "focal" with
    ``gamma``); outputs recorded on the held-out data as ``"held_out"``."""
    c = IMBALANCE
    x, y, xv, _ = imbalance_data()
    loss = binary_loss(name, pos_weight=c["n_major"] / c["n_minor"], gamma=gamma)
    return train(x, y, loss, hidden=0, out_features=1, steps=c["steps"], lr=c["lr"],
                 seed=c["seed"], record_every=c["record_every"], evaluate={"held_out": xv})


def noisy_data() -> tuple[torch.Tensor, ...]:
    """The noisy-label experiment's data: two balanced classes, 20 % of labels flipped in
    the training set and in the held-out set alike: ``x, y, x_held_out, y_held_out``."""
    c = NOISY
    x, y = two_blobs(c["n_per_class"], c["n_per_class"], seed=c["seed"], shift=c["shift"])
    xv, yv = two_blobs(10 * c["n_per_class"], 10 * c["n_per_class"], seed=c["held_out_seed"],
                       shift=c["shift"])
    y = flip_labels(y.long(), c["flip"], 2, seed=c["seed"] + 100)
    yv = flip_labels(yv.long(), c["flip"], 2, seed=c["held_out_seed"] + 100)
    return x, y, xv, yv


def noisy_lab(smoothing: float) -> Run:
    """A small tanh network (two logits) trained on :func:`noisy_data` by cross-entropy with
    ``label_smoothing=smoothing``; outputs on the training and held-out inputs recorded."""
    c = NOISY
    x, y, xv, _ = noisy_data()
    return train(x, y, lambda z, t: F.cross_entropy(z, t, label_smoothing=smoothing),
                 hidden=c["hidden"], out_features=2, steps=c["steps"], lr=c["lr"],
                 seed=c["seed"], record_every=c["record_every"],
                 evaluate={"train": x, "held_out": xv})


CALIBRATION = {"n": 300, "n_held_out": 1500, "seed": 0, "spread": 1.0, "hidden": 32,
               "steps": 300, "lr": 0.05}
CALIBRATION_LOSSES = {
    "cross-entropy": lambda z, t: F.cross_entropy(z, t),
    "label smoothing 0.1": lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1),
    "focal γ = 2": lambda z, t: _softmax_focal(z, t, 2.0),
}


def _softmax_focal(z: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    from . import calibration

    return calibration.softmax_focal_loss(z, t, gamma)


def calibration_data() -> tuple[torch.Tensor, ...]:
    """Three overlapping classes: training (300), validation and test sets (1500 each):
    ``x, y, x_val, y_val, x_test, y_test``."""
    c = CALIBRATION
    x, y = three_blobs(c["n"], seed=c["seed"], spread=c["spread"])
    xv, yv = three_blobs(c["n_held_out"], seed=c["seed"] + 1, spread=c["spread"])
    xt, yt = three_blobs(c["n_held_out"], seed=c["seed"] + 2, spread=c["spread"])
    return x, y, xv, yv, xt, yt


def calibration_lab(name: str) -> Run:
    """A small tanh network (three logits) trained on :func:`calibration_data` under one of
    ``CALIBRATION_LOSSES``; its final logits on the validation and test sets recorded."""
    c = CALIBRATION
    if name not in CALIBRATION_LOSSES:
        raise ValueError(f"loss must be one of {list(CALIBRATION_LOSSES)}; got {name!r}")
    x, y, xv, _, xt, _ = calibration_data()
    return train(x, y, CALIBRATION_LOSSES[name], hidden=c["hidden"], out_features=3,
                 steps=c["steps"], lr=c["lr"], seed=c["seed"], record_every=c["steps"],
                 evaluate={"val": xv, "test": xt})
