"""The multi-class chapter's figures: three logits, temperature, label smoothing, the floor."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import classification

LOGIT_VALUES = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
SWEEP = torch.linspace(-6.0, 6.0, 61, dtype=torch.float64)
TEMPERATURES = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
TEMPERATURE_LOGITS = torch.tensor([3.0, 1.5, 1.0, 0.0, -1.0], dtype=torch.float64)
SMOOTHING = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5]
SMOOTHING_CLASSES = 5
MARGINS = torch.linspace(-2.0, 12.0, 141, dtype=torch.float64)
CLASS_COUNTS = [2, 3, 5, 10, 20, 50, 100, 1000]


def _ce_sweep(z1: float, z2: float, target: int):
    """CE loss and its autograd gradient in all three logits, as z0 sweeps SWEEP."""
    z0 = SWEEP.clone().requires_grad_(True)
    z12 = torch.tensor([z1, z2], dtype=torch.float64).expand(len(SWEEP), 2).clone()
    z12.requires_grad_(True)
    logits = torch.cat([z0[:, None], z12], dim=1)
    loss = F.cross_entropy(logits, torch.full((len(SWEEP),), target), reduction="none")
    g0, g12 = torch.autograd.grad(loss.sum(), (z0, z12))
    return loss.detach().numpy(), [g0.numpy(), g12[:, 0].numpy(), g12[:, 1].numpy()]


def three_logits() -> widgets.Figure:
    """Softmax probabilities, CE loss and its gradient for three logits and a target class."""
    # Every series of a setting reads one autograd sweep; compute it once per setting.
    sweep = functools.cache(_ce_sweep)

    def current(z0, z1, z2):
        return torch.tensor([[z0, z1, z2]], dtype=torch.float64)

    def point_loss(z0, z1, z2, target):
        return F.cross_entropy(current(z0, z1, z2), torch.tensor([target])).reshape(1).numpy()

    def point_grad(z0, z1, z2, target):
        # The analytic gradient, drawn over the autograd curves to show they agree.
        return classification.cross_entropy_grad(current(z0, z1, z2),
                                                 torch.tensor([target]))[0].numpy()

    classes = np.array([0.0, 1.0, 2.0])
    xs = SWEEP.numpy()
    logits3 = ("z0", "z1", "z2")
    curve_deps = ("z1", "z2", "target")
    all_deps = ("z0", "z1", "z2", "target")
    probs = widgets.Panel(
        "softmax probabilities", "class", "probability",
        [
            widgets.Series("softmax(z)", classes,
                           lambda z0, z1, z2: torch.softmax(current(z0, z1, z2), 1)[0].numpy(),
                           logits3, kind="points"),
            widgets.Series("one-hot target", classes,
                           lambda target: np.eye(3)[target], ("target",), kind="points",
                           color=5),
        ],
        xlim=(-0.5, 2.5), ylim=(-0.05, 1.05),
    )
    loss = widgets.Panel(
        "loss as z₀ moves", "logit z₀", "cross-entropy",
        [
            widgets.Series("cross_entropy", xs, lambda **p: sweep(**p)[0], curve_deps),
            widgets.Series("current z", lambda z0, **_: np.array([z0]), point_loss, all_deps,
                           kind="points", color=1),
        ],
        ylim=(-0.3, 10.0),
    )
    grad_series = [
        widgets.Series(f"∂/∂z{sub} (autograd)", xs,
                       lambda k=k, **p: sweep(**p)[1][k], curve_deps, color=k,
                       style=["solid", "dashed", "dotted"][k])
        for k, sub in enumerate("₀₁₂")
    ]
    grad_series.append(widgets.Series(
        "softmax(z) − onehot at current z", lambda z0, **_: np.array([z0, z0, z0]),
        point_grad, all_deps, kind="points", color=5))
    grad = widgets.Panel("gradient as z₀ moves", "logit z₀", "d loss / d z_k", grad_series,
                         ylim=(-1.1, 1.1))
    target_options = {f"class {k}": k for k in range(3)}
    return widgets.figure(
        [probs, loss, grad],
        [
            widgets.slider("z0", LOGIT_VALUES, label="logit z₀", value=1.0),
            widgets.slider("z1", LOGIT_VALUES, label="logit z₁", value=0.0),
            widgets.slider("z2", LOGIT_VALUES, label="logit z₂", value=-1.0),
            widgets.dropdown("target", target_options, label="target", value=0),
        ],
        title="Softmax cross-entropy over three logits",
    )


def temperature() -> widgets.Figure:
    """softmax(z / T) over five fixed logits, the loss against T, and the gradient at T."""
    logits = TEMPERATURE_LOGITS
    classes = np.arange(len(logits), dtype=float)
    target = torch.tensor([0])
    t_grid = torch.logspace(-1, 1, 121, dtype=torch.float64)

    def loss_at(t):
        return F.cross_entropy(logits[None] / t, target)

    t_req = t_grid.clone().requires_grad_(True)
    curve = F.cross_entropy(logits[None].expand(len(t_grid), -1) / t_req[:, None],
                            target.expand(len(t_grid)), reduction="none").detach().numpy()

    def grad_at(t):
        z = logits.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(z[None] / t, target), z)
        return g.numpy()

    return widgets.figure(
        [
            widgets.Panel(
                "softmax(z / T)", "class", "probability",
                [
                    widgets.Series("at T", classes,
                                   lambda t: torch.softmax(logits / t, 0).numpy(), ("t",),
                                   kind="points"),
                    widgets.Series("at T = 1", classes, torch.softmax(logits, 0).numpy(),
                                   kind="points", color=5),
                ],
                xlim=(-0.5, len(logits) - 0.5), ylim=(-0.05, 1.05),
            ),
            widgets.Panel(
                "loss of class 0 against T", "temperature T", "cross-entropy",
                [
                    widgets.Series("cross_entropy(z / T, 0)", t_grid.numpy(), curve),
                    widgets.Series("current T", lambda t: np.array([t]),
                                   lambda t: loss_at(t).reshape(1).numpy(), ("t",),
                                   kind="points", color=1),
                ],
            ),
            widgets.Panel(
                "gradient at T (autograd)", "class", "d loss / d z_k",
                [widgets.Series("d loss / d z_k", classes, grad_at, ("t",), kind="points",
                                color=2)],
                xlim=(-0.5, len(logits) - 0.5),
            ),
        ],
        [widgets.slider("t", TEMPERATURES, label="temperature T", value=1.0)],
        title="Softmax temperature",
    )


def _margin_curve(num_classes: int, **ce_kwargs):
    """CE loss and d loss / d m for logits [m, 0, ..., 0] and target 0, over MARGINS."""
    m = MARGINS.clone().requires_grad_(True)
    rest = torch.zeros(len(MARGINS), num_classes - 1, dtype=torch.float64)
    logits = torch.cat([m[:, None], rest], dim=1)
    target = torch.zeros(len(MARGINS), dtype=torch.long)
    probs_first = ce_kwargs.pop("probs_first", False)
    inp = torch.softmax(logits, dim=1) if probs_first else logits
    loss = F.cross_entropy(inp, target, reduction="none", **ce_kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), m)
    return loss.detach().numpy(), grad.numpy()


def label_smoothing() -> widgets.Figure:
    """CE with label smoothing against the target's logit margin, loss and gradient."""
    c = SMOOTHING_CLASSES
    xs = MARGINS.numpy()
    cache: dict = {}

    def smoothed(eps):
        if eps not in cache:
            cache[eps] = _margin_curve(c, label_smoothing=eps)
        return cache[eps]

    plain = _margin_curve(c)

    def best_x(eps):
        return np.array([classification.smoothing_best_margin(c, eps)])

    def best_y(eps):
        m = classification.smoothing_best_margin(c, eps)
        if not np.isfinite(m):
            return np.array([0.0])
        logits = torch.zeros(1, c, dtype=torch.float64)
        logits[0, 0] = m
        return F.cross_entropy(logits, torch.tensor([0]), label_smoothing=eps).reshape(1).numpy()

    return widgets.figure(
        [
            widgets.Panel(
                "loss against the margin", "target logit margin m", "cross-entropy",
                [
                    widgets.Series("label_smoothing = ε", xs, lambda eps: smoothed(eps)[0],
                                   ("eps",)),
                    widgets.Series("no smoothing", xs, plain[0], style="dotted", color=5),
                    widgets.Series("minimum", best_x, best_y, ("eps",), kind="points",
                                   color=1),
                ],
            ),
            widgets.Panel(
                "gradient (autograd)", "target logit margin m", "d loss / d m",
                [
                    widgets.Series("label_smoothing = ε", xs, lambda eps: smoothed(eps)[1],
                                   ("eps",)),
                    widgets.Series("no smoothing", xs, plain[1], style="dotted", color=5),
                ],
            ),
        ],
        [widgets.slider("eps", SMOOTHING, label="label smoothing ε", value=0.1)],
        title=f"Label smoothing over {c} classes",
    )


def softmax_floor() -> widgets.Figure:
    """CE on logits against CE on softmax(logits) as the margin grows, and the floor over C."""
    xs = MARGINS.numpy()
    cache: dict = {}

    def curves(num_classes):
        if num_classes not in cache:
            cache[num_classes] = (_margin_curve(num_classes),
                                  _margin_curve(num_classes, probs_first=True))
        return cache[num_classes]

    counts = np.unique(np.round(np.logspace(np.log10(2), 3, 200)))
    floors = np.array([classification.softmax_before_ce_floor(int(k)) for k in counts])
    return widgets.figure(
        [
            widgets.Panel(
                "loss against the margin", "target logit margin m", "cross-entropy",
                [
                    widgets.Series("CE on logits", xs, lambda c: curves(c)[0][0], ("c",)),
                    widgets.Series("CE on softmax(z)", xs, lambda c: curves(c)[1][0], ("c",),
                                   style="dashed", color=1),
                    widgets.Series("floor log(1 + (C − 1)/e)", MARGINS[[0, -1]].numpy(),
                                   lambda c: np.full(2, classification.softmax_before_ce_floor(c)),
                                   ("c",), style="dotted", color=5),
                ],
            ),
            widgets.Panel(
                "gradient (autograd)", "target logit margin m", "d loss / d m",
                [
                    widgets.Series("CE on logits", xs, lambda c: curves(c)[0][1], ("c",)),
                    widgets.Series("CE on softmax(z)", xs, lambda c: curves(c)[1][1], ("c",),
                                   style="dashed", color=1),
                ],
                ylim=(-1.05, 0.1),
            ),
            widgets.Panel(
                "the floor against the number of classes", "log₁₀ C", "lowest loss",
                [
                    widgets.Series("log(1 + (C − 1)/e)", np.log10(counts), floors, color=5),
                    widgets.Series("current C", lambda c: np.array([np.log10(c)]),
                                   lambda c: np.array([classification.softmax_before_ce_floor(c)]),
                                   ("c",), kind="points", color=1),
                ],
            ),
        ],
        [widgets.slider("c", CLASS_COUNTS, label="classes C", value=10)],
        title="Softmax before CrossEntropyLoss: the loss floor",
    )
