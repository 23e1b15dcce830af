"""Margin and ranking losses written out: hinges and soft hinges on scores and distances.

Each ``*_formula`` takes the arguments of its ``torch.nn.functional`` twin, ``reduction``
included, and computes the loss from its definition with plain tensor operations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .probabilistic import reduce


def margin_ranking_formula(input1: torch.Tensor, input2: torch.Tensor, target: torch.Tensor,
                           margin: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """``max(0, -y (x1 - x2) + margin)``: y = 1 asks x1 to beat x2 by the margin, y = -1 the
    reverse. Three tensors of one shape, usually (N,); ``target`` holds ±1 as floats."""
    return reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def hinge_embedding_formula(input: torch.Tensor, target: torch.Tensor, margin: float = 1.0,
                            reduction: str = "mean") -> torch.Tensor:
    """``x`` where y = 1 and ``max(0, margin - x)`` where y = -1; ``input`` is a distance."""
    return reduce(torch.where(target == 1, input, (margin - input).clamp(min=0)), reduction)


def soft_margin_formula(input: torch.Tensor, target: torch.Tensor,
                        reduction: str = "mean") -> torch.Tensor:
    """``log(1 + exp(-y x))`` per element, computed as ``softplus(-y x)``; y is ±1."""
    return reduce(F.softplus(-target * input), reduction)


def multi_margin_formula(input: torch.Tensor, target: torch.Tensor, p: int = 1,
                         margin: float = 1.0, weight: torch.Tensor | None = None,
                         reduction: str = "mean") -> torch.Tensor:
    """Multi-class hinge: ``sum over i != y of w[y] max(0, margin - x[y] + x[i])**p``, over C.

    ``input`` is float (N, C) scores, ``target`` long (N,) class indices, ``p`` 1 or 2.
    """
    num_classes = input.shape[1]
    true = input.gather(1, target.unsqueeze(1))
    hinge = (margin - true + input).clamp(min=0) ** p
    others = torch.ones_like(input, dtype=torch.bool).scatter(1, target.unsqueeze(1), False)
    per_sample = (hinge * others).sum(dim=1)
    if weight is not None:
        per_sample = per_sample * weight[target]
    return reduce(per_sample / num_classes, reduction)


def multilabel_margin_counts(target: torch.Tensor) -> torch.Tensor:
    """How often each class is listed in a -1-terminated index target (N, C): (N, C) counts.

    Indices count up to the first -1 of each row; whatever follows it is ignored. A class
    listed twice counts twice, as it does in PyTorch.
    """
    listed = (target >= 0) & ~(target < 0).long().cummax(dim=1).values.bool()
    counts = torch.zeros(target.shape, dtype=torch.long)
    return counts.scatter_add(1, target.clamp(min=0), listed.long())


def multilabel_margin_formula(input: torch.Tensor, target: torch.Tensor,
                              reduction: str = "mean") -> torch.Tensor:
    """``sum over targets j and non-targets i of max(0, 1 - (x[j] - x[i]))``, over C.

    ``input`` float (N, C); ``target`` long (N, C) of class indices ended by -1.
    """
    counts = multilabel_margin_counts(target).to(input.dtype)
    pairs = (1 - (input.unsqueeze(2) - input.unsqueeze(1))).clamp(min=0)  # [n, j, i]
    chosen = counts.unsqueeze(2) * (counts == 0).unsqueeze(1)
    return reduce((pairs * chosen).sum(dim=(1, 2)) / input.shape[1], reduction)


def multilabel_soft_margin_formula(input: torch.Tensor, target: torch.Tensor,
                                   weight: torch.Tensor | None = None,
                                   reduction: str = "mean") -> torch.Tensor:
    """``-mean over C of w[c] (y log σ(x) + (1 - y) log σ(-x))`` per sample.

    ``input`` float (N, C) logits, ``target`` float multi-hot (N, C) (not indices).
    """
    per_label = -(target * F.logsigmoid(input) + (1 - target) * F.logsigmoid(-input))
    if weight is not None:
        per_label = per_label * weight
    return reduce(per_label.mean(dim=1), reduction)


def triplet_with_distance_formula(anchor: torch.Tensor, positive: torch.Tensor,
                                  negative: torch.Tensor,
                                  distance_function: Callable | None = None,
                                  margin: float = 1.0, swap: bool = False,
                                  reduction: str = "mean") -> torch.Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` with any distance ``d`` (default L2).

    With ``swap`` the negative's distance is the smaller of ``d(a, n)`` and ``d(p, n)``.
    """
    d = distance_function or F.pairwise_distance
    d_n = d(anchor, negative)
    if swap:
        d_n = torch.minimum(d_n, d(positive, negative))
    return reduce((d(anchor, positive) - d_n + margin).clamp(min=0), reduction)


def cosine_distance(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``1 - cos(x1, x2)`` along the last dimension: 0 for one direction, 2 for opposite."""
    return 1 - F.cosine_similarity(x1, x2, dim=-1)
