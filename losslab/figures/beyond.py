"""The beyond-the-basics chapter's figures: focal loss over p_t, distillation over T."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import beyond

GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.0, 5.0]
ALPHAS = [0.25, 0.5, 0.75]
P_T = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
TEMPERATURES = [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0]
T_GRID = torch.linspace(1.0, 10.0, 91, dtype=torch.float64)
TEACHER = torch.tensor([[4.0, 1.5, 1.0, -0.5, -2.0]], dtype=torch.float64)
STUDENTS = {
    "near the teacher": torch.tensor([[3.0, 2.0, 0.5, 0.0, -1.5]], dtype=torch.float64),
    "far from the teacher": torch.tensor([[0.0, 2.5, -1.0, 1.5, 0.5]], dtype=torch.float64),
}


def focal_curve(gamma: float, alpha: float | None, positive: bool):
    """Focal loss and its autograd gradient in the logit, over the true label's p_t."""
    z = beyond.logit_of(P_T, positive).requires_grad_(True)
    target = torch.full_like(z, 1.0 if positive else 0.0)
    loss = beyond.sigmoid_focal_loss(z, target, alpha=alpha, gamma=gamma, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), z)
    return loss.detach().numpy(), grad.numpy()


def focal_explorer() -> widgets.Figure:
    """Focal loss against cross-entropy over p_t, with gamma, alpha and the label."""
    xs = P_T.numpy()
    # Loss and gradient come from one autograd pass; compute it once per setting.
    focal = functools.cache(focal_curve)

    ce = {b: focal_curve(0.0, None, b) for b in (False, True)}
    series = []
    for i, panel in enumerate(("loss", "gradient")):
        series.append([
            widgets.Series("cross-entropy", xs, lambda positive, i=i: ce[positive][i],
                           ("positive",), style="dotted", color=5),
            widgets.Series("focal (γ, α)", xs, lambda i=i, **p: focal(**p)[i],
                           ("gamma", "alpha", "positive")),
        ])
    return widgets.figure(
        [
            widgets.Panel("loss against p_t", "p_t, the probability of the true label", "loss",
                          series[0], xlim=(0.0, 1.0), ylim=(-0.1, 4.7)),
            widgets.Panel("gradient in the logit (autograd)",
                          "p_t, the probability of the true label", "d loss / d z", series[1],
                          xlim=(0.0, 1.0), ylim=(-1.05, 1.05)),
        ],
        [
            widgets.slider("gamma", GAMMAS, label="γ (focusing)", value=2.0),
            widgets.slider("alpha", ALPHAS, label="α (positive weight)", value=0.25),
            widgets.toggle("positive", label="positive example (y = 1)", value=True),
        ],
        title="Focal loss against cross-entropy over p_t",
    )


def distillation_curves(student: torch.Tensor):
    """Over T_GRID: KL without T², T²·KL, and each one's gradient norm in the student logits."""
    rows = {"KL(teacher ‖ student)": ([], []), "T² · KL": ([], [])}
    for t in T_GRID.tolist():
        s = student.clone().requires_grad_(True)
        kl = F.kl_div(F.log_softmax(s / t, dim=1), F.softmax(TEACHER / t, dim=1),
                      reduction="batchmean")
        (g,) = torch.autograd.grad(kl, s)
        for name, scale in (("KL(teacher ‖ student)", 1.0), ("T² · KL", t * t)):
            rows[name][0].append(scale * kl.item())
            rows[name][1].append(scale * g.norm().item())
    return {k: (np.array(v[0]), np.array(v[1])) for k, v in rows.items()}


def distillation_explorer() -> widgets.Figure:
    """Softened teacher and student distributions, and the distillation loss against T."""
    classes = np.arange(TEACHER.shape[1], dtype=float)
    curves = {name: distillation_curves(s) for name, s in STUDENTS.items()}
    xs = T_GRID.numpy()
    names = ("KL(teacher ‖ student)", "T² · KL")

    def at(student, t):
        return beyond.distillation_loss(STUDENTS[student], TEACHER, t).reshape(1).numpy()

    return widgets.figure(
        [
            widgets.Panel(
                "softened distributions at T", "class", "probability",
                [
                    widgets.Series("teacher softmax(z_t / T)", classes,
                                   lambda t: F.softmax(TEACHER / t, dim=1)[0].numpy(), ("t",),
                                   kind="points", color=5),
                    widgets.Series("student softmax(z_s / T)", classes,
                                   lambda student, t: F.softmax(STUDENTS[student] / t,
                                                                dim=1)[0].numpy(),
                                   ("student", "t"), kind="points", color=0),
                ],
                xlim=(-0.5, len(classes) - 0.5), ylim=(-0.03, 1.0),
            ),
            widgets.Panel(
                "distillation loss against T", "temperature T", "loss",
                [widgets.Series(n, xs, lambda student, n=n: curves[student][n][0], ("student",),
                                color=i, style=["dashed", "solid"][i])
                 for i, n in enumerate(names)]
                + [widgets.Series("current T", lambda t, **_: np.array([t]), at,
                                  ("student", "t"), kind="points", color=1)],
            ),
            widgets.Panel(
                "gradient size in the student logits", "temperature T", "‖d loss / d z_s‖",
                [widgets.Series(n, xs, lambda student, n=n: curves[student][n][1], ("student",),
                                color=i, style=["dashed", "solid"][i])
                 for i, n in enumerate(names)],
            ),
        ],
        [
            widgets.slider("t", TEMPERATURES, label="temperature T", value=2.0),
            widgets.dropdown("student", list(STUDENTS), label="student"),
        ],
        title="Distillation loss against temperature",
    )
