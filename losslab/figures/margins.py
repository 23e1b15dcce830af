"""The margin-and-ranking chapter's figures: hinges on scores, classes, labels and distances."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import margins

MARGINS = [0.0, 0.5, 1.0, 2.0]


def _sign(positive: bool) -> float:
    return 1.0 if positive else -1.0


def pair_losses() -> widgets.Figure:
    """MarginRanking, SoftMargin and HingeEmbedding against one score, for y = ±1."""
    def ranking(input, target, margin, positive):
        y = torch.full_like(input, _sign(positive))
        return F.margin_ranking_loss(input, torch.zeros_like(input), y, margin=margin,
                                     reduction="none")

    def soft(input, target, positive):
        return F.soft_margin_loss(input, torch.full_like(input, _sign(positive)),
                                  reduction="none")

    def hinge_embedding(input, target, margin, positive):
        return F.hinge_embedding_loss(input, torch.full_like(input, _sign(positive)),
                                      margin=margin, reduction="none")

    return widgets.loss_explorer(
        {"MarginRankingLoss (x1 − x2 = x)": ranking, "SoftMarginLoss": soft,
         "HingeEmbeddingLoss (x a distance)": hinge_embedding},
        controls=[widgets.slider("margin", MARGINS, label="margin", value=1.0),
                  widgets.toggle("positive", label="y = +1 (off: y = −1)", value=True)],
        x=torch.linspace(-3.0, 3.0, 121, dtype=torch.float64),
        xlabel="score x", loss_ylim=(-3.2, 5.2), grad_ylim=(-1.1, 1.1),
        title="Margin losses for one score and a ±1 target",
    )


# --- MultiMarginLoss against the true class's score ------------------------------------------

OTHER_SCORES = torch.tensor([1.0, 0.0, -0.5], dtype=torch.float64)
TRUE_SCORE = torch.linspace(-3.0, 4.0, 141, dtype=torch.float64)
CLASS_WEIGHTS = [0.5, 1.0, 2.0]


@functools.cache
def multi_margin_curves(p: int, margin: float, weight0: float):
    """MultiMarginLoss and cross-entropy over TRUE_SCORE (class 0 is true), with gradients."""
    scores = torch.cat([TRUE_SCORE[:, None], OTHER_SCORES.expand(len(TRUE_SCORE), 3)], dim=1)
    scores.requires_grad_(True)
    target = torch.zeros(len(TRUE_SCORE), dtype=torch.long)
    weight = torch.tensor([weight0, 1.0, 1.0, 1.0], dtype=torch.float64)
    out = {}
    for name, loss in {
        "MultiMarginLoss": F.multi_margin_loss(scores, target, p=p, margin=margin, weight=weight,
                                               reduction="none"),
        "CrossEntropyLoss": F.cross_entropy(scores, target, reduction="none"),
    }.items():
        (grad,) = torch.autograd.grad(loss.sum(), scores)
        out[name] = (loss.detach().numpy(), grad[:, 0].numpy())
    return out


def multi_margin() -> widgets.Figure:
    """MultiMarginLoss against the true class's score, beside cross-entropy."""
    xs = TRUE_SCORE.numpy()
    depends = ("p", "margin", "weight0")
    series = [[
        widgets.Series("MultiMarginLoss", xs, lambda i=i, **k: multi_margin_curves(**k)[
            "MultiMarginLoss"][i], depends),
        widgets.Series("CrossEntropyLoss", xs, lambda i=i, **k: multi_margin_curves(**k)[
            "CrossEntropyLoss"][i], depends, style="dotted", color=5),
    ] for i in (0, 1)]
    return widgets.figure(
        [widgets.Panel("loss", "score of the true class (others 1, 0, −0.5)", "loss",
                       series[0]),
         widgets.Panel("gradient in that score (autograd)",
                       "score of the true class (others 1, 0, −0.5)", "d loss / d x[y]",
                       series[1])],
        [widgets.slider("p", [1, 2], label="p", value=1),
         widgets.slider("margin", [0.5, 1.0, 2.0], label="margin", value=1.0),
         widgets.slider("weight0", CLASS_WEIGHTS, label="weight of the true class", value=1.0)],
        title="MultiMarginLoss against the true class's score",
    )


# --- multi-label: the index-target hinge against the soft margin --------------------------------

LABEL_SCORES = torch.tensor([1.0, 0.5, 0.0, -0.5], dtype=torch.float64)
TARGET_SETS = {"labels 0 and 2": [0, 2], "label 0 only": [0]}
MOVED = torch.linspace(-4.0, 4.0, 161, dtype=torch.float64)


@functools.cache
def multilabel_curves(moved: int, labels: str):
    """Both multi-label losses (and BCE) as label ``moved``'s score goes over MOVED."""
    chosen = TARGET_SETS[labels]
    index_target = torch.full((len(MOVED), 4), -1, dtype=torch.long)
    index_target[:, :len(chosen)] = torch.tensor(chosen)
    multi_hot = torch.zeros(len(MOVED), 4, dtype=torch.float64)
    multi_hot[:, chosen] = 1.0
    scores = LABEL_SCORES.repeat(len(MOVED), 1)
    scores[:, moved] = MOVED
    scores.requires_grad_(True)
    out = {}
    for name, loss in {
        "MultiLabelMarginLoss (index targets)": F.multilabel_margin_loss(
            scores, index_target, reduction="none"),
        "MultiLabelSoftMarginLoss (multi-hot)": F.multilabel_soft_margin_loss(
            scores, multi_hot, reduction="none"),
        "BCEWithLogitsLoss, mean over labels": F.binary_cross_entropy_with_logits(
            scores, multi_hot, reduction="none").mean(dim=1),
    }.items():
        (grad,) = torch.autograd.grad(loss.sum(), scores)
        out[name] = (loss.detach().numpy(), grad[:, moved].numpy())
    return out


def multilabel() -> widgets.Figure:
    """MultiLabelMarginLoss and MultiLabelSoftMarginLoss against one label's score."""
    xs = MOVED.numpy()
    names = ["MultiLabelMarginLoss (index targets)", "MultiLabelSoftMarginLoss (multi-hot)",
             "BCEWithLogitsLoss, mean over labels"]
    series = [[widgets.Series(n, xs, lambda n=n, i=i, **k: multilabel_curves(**k)[n][i],
                              ("moved", "labels"), color=c, style=s)
               for c, (n, s) in enumerate(zip(names, ["solid", "solid", "dashed"]))]
              for i in (0, 1)]
    return widgets.figure(
        [widgets.Panel("loss", "score of the moved label (others 1, 0.5, 0, −0.5)", "loss",
                       series[0]),
         widgets.Panel("gradient in that score (autograd)",
                       "score of the moved label (others 1, 0.5, 0, −0.5)", "d loss / d x",
                       series[1], ylim=(-1.1, 1.1))],
        [widgets.dropdown("moved", {f"label {i}": i for i in range(4)}, label="moved label"),
         widgets.dropdown("labels", list(TARGET_SETS), label="true labels")],
        title="Multi-label margin losses against one label's score",
    )


# --- TripletMarginWithDistanceLoss: the negative walks round the anchor -------------------------

ANGLES = torch.linspace(0.0, np.pi, 121, dtype=torch.float64)
ANCHOR = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
POSITIVE = torch.tensor([[np.cos(0.6), np.sin(0.6)]], dtype=torch.float64)
DISTANCES = {"Euclidean (pairwise_distance)": "euclidean", "cosine, 1 − cos": "cosine"}


@functools.cache
def triplet_curves(distance: str, margin: float, swap: bool):
    """Triplet losses as the negative, on the unit circle, goes round from the anchor."""
    theta = ANGLES.clone().requires_grad_(True)
    negative = torch.stack([theta.cos(), theta.sin()], dim=1)
    n = len(ANGLES)
    a, p = ANCHOR.expand(n, 2), POSITIVE.expand(n, 2)
    fn = margins.cosine_distance if distance == "cosine" else None
    out = {}
    for name, loss in {
        "TripletMarginWithDistanceLoss": F.triplet_margin_with_distance_loss(
            a, p, negative, distance_function=fn, margin=margin, swap=swap, reduction="none"),
        "TripletMarginLoss (L2)": F.triplet_margin_loss(a, p, negative, margin=margin, swap=swap,
                                                        reduction="none"),
    }.items():
        (grad,) = torch.autograd.grad(loss.sum(), theta, retain_graph=True)
        out[name] = (loss.detach().numpy(), grad.numpy())
    return out


def triplet_distance() -> widgets.Figure:
    """Triplet loss with a chosen distance as the negative moves round the unit circle."""
    xs = ANGLES.numpy()
    depends = ("distance", "margin", "swap")
    names = ["TripletMarginWithDistanceLoss", "TripletMarginLoss (L2)"]
    series = [[widgets.Series(n, xs, lambda n=n, i=i, **k: triplet_curves(**k)[n][i], depends,
                              color=[0, 5][j], style=["solid", "dotted"][j])
               for j, n in enumerate(names)] for i in (0, 1)]
    return widgets.figure(
        [widgets.Panel("loss", "angle of the negative from the anchor (radians)", "loss",
                       series[0], xlim=(0.0, float(np.pi)), ylim=(-0.05, 1.7)),
         widgets.Panel("gradient in the angle (autograd)",
                       "angle of the negative from the anchor (radians)", "d loss / d angle",
                       series[1], xlim=(0.0, float(np.pi)), ylim=(-1.1, 1.1))],
        [widgets.dropdown("distance", DISTANCES, label="distance function"),
         widgets.slider("margin", [0.25, 0.5, 1.0], label="margin", value=0.5),
         widgets.toggle("swap", label="swap", value=False)],
        title="Triplet loss with a distance function, negative on the unit circle",
    )
