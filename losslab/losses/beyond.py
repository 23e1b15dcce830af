"""Losses beyond the basics: focal loss, distillation, multi-task sums, metric learning.

Math only (tensors in, tensors out); the chapter's widgets live in ``beyond_widgets``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")


# --- focal loss ------------------------------------------------------------------------------

def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float | None = 0.25,
                       gamma: float = 2.0, reduction: str = "mean") -> torch.Tensor:
    """Sigmoid focal loss (Lin et al., 2017) for binary or multi-label logits.

    ``logits``, ``target``: float tensors of one shape, (N,) or (N, L); targets 0/1.
    Per element: ``alpha_t (1 - p_t)**gamma * BCE(z, y)``, where ``p_t`` is the probability
    given to the true label and ``alpha_t`` is ``alpha`` for positives and ``1 - alpha``
    for negatives; ``alpha=None`` weights both by 1. The BCE term comes from logits, so the
    loss stays finite at any logit. Returns the reduced loss (or one per element).
    """
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    probs = torch.sigmoid(logits)
    p_t = probs * target + (1 - probs) * (1 - target)
    loss = (1 - p_t) ** gamma * bce
    if alpha is not None:
        alpha_t = alpha * target + (1 - alpha) * (1 - target)
        loss = alpha_t * loss
    return _reduce(loss, reduction)


class FocalLoss(nn.Module):
    """``sigmoid_focal_loss`` as a module: ``FocalLoss(alpha, gamma, reduction)(logits, target)``.

    ``alpha`` really weights the loss (positives by ``alpha``, negatives by ``1 - alpha``);
    pass ``alpha=None`` for no class weighting.
    """

    def __init__(self, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "mean"):
        super().__init__()
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1] or be None; got {alpha}")
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0; got {gamma}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sigmoid_focal_loss(logits, target, self.alpha, self.gamma, self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}"


def logit_of(p_t: torch.Tensor, positive: bool) -> torch.Tensor:
    """The logit that gives the true label probability ``p_t`` (label 1 if ``positive``)."""
    z = torch.log(p_t) - torch.log1p(-p_t)
    return z if positive else -z


# --- distillation ----------------------------------------------------------------------------

def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float = 2.0) -> torch.Tensor:
    """Knowledge-distillation loss: ``T**2 * KL(teacher_T || student_T)`` per batch.

    ``student_logits``, ``teacher_logits``: (N, C) float. Both are softened by dividing by
    ``temperature``. ``F.kl_div`` takes the student's **log**-probabilities as ``input`` and
    the teacher's probabilities as ``target``; ``reduction="batchmean"`` divides the sum by
    N, which is the KL divergence per example (``"mean"`` would divide by N * C). The T**2
    factor keeps the gradient's size roughly independent of T. Returns a scalar.
    """
    t = temperature
    log_student = F.log_softmax(student_logits / t, dim=-1)
    teacher = F.softmax(teacher_logits / t, dim=-1)
    return t * t * F.kl_div(log_student, teacher, reduction="batchmean")


def kl_formula(log_q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``sum p (log p - log q)`` per row, the KL divergence of ``p`` from ``q``; 0 log 0 = 0."""
    terms = torch.where(p > 0, p * (torch.log(p) - log_q), torch.zeros_like(p))
    return terms.sum(dim=-1)


# --- combining and custom losses -------------------------------------------------------------

class WeightedSum(nn.Module):
    """Fixed-weight multi-task loss: ``sum_k w_k L_k``; returns the total and the parts."""

    def __init__(self, weights: dict[str, float]):
        super().__init__()
        self.weights = dict(weights)

    def forward(self, losses: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        missing = set(self.weights) - set(losses)
        if missing:
            raise KeyError(f"losses for tasks {sorted(missing)} are missing; got {sorted(losses)}")
        parts = {k: self.weights[k] * losses[k] for k in self.weights}
        return sum(parts.values()), {k: v.detach() for k, v in parts.items()}


class UncertaintyWeighting(nn.Module):
    """Learned multi-task weights (Kendall et al., 2018): ``sum_k exp(-s_k) L_k + s_k``.

    One learnable ``s_k = log sigma_k**2`` per task, trained with the model: a task whose
    loss stays large gets a smaller weight, and the ``+ s_k`` term stops every weight from
    collapsing to 0.
    """

    def __init__(self, num_tasks: int):
        super().__init__()
        self.log_vars = nn.Parameter(torch.zeros(num_tasks))

    def forward(self, losses: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(list(losses))
        return (torch.exp(-self.log_vars) * stacked + self.log_vars).sum()


# --- metric learning -------------------------------------------------------------------------

def triplet_formula(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                    margin: float = 1.0, p: float = 2.0, eps: float = 1e-6) -> torch.Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` per row, with ``d(x, y) = ||x - y + eps||_p``.

    The ``eps`` matches ``F.pairwise_distance``, which ``TripletMarginLoss`` uses.
    """
    d_pos = torch.linalg.vector_norm(anchor - positive + eps, ord=p, dim=-1)
    d_neg = torch.linalg.vector_norm(anchor - negative + eps, ord=p, dim=-1)
    return torch.clamp(d_pos - d_neg + margin, min=0)


def cosine_embedding_formula(x1: torch.Tensor, x2: torch.Tensor, target: torch.Tensor,
                             margin: float = 0.0) -> torch.Tensor:
    """``1 - cos`` for pairs labelled 1, ``max(0, cos - margin)`` for pairs labelled -1."""
    cos = F.cosine_similarity(x1, x2, dim=-1)
    return torch.where(target > 0, 1 - cos, torch.clamp(cos - margin, min=0))


class DistillationLoss(nn.Module):
    """``weight * T**2 * KL(teacher_T || student_T) + (1 - weight) * CE(student, labels)``.

    ``forward(student_logits, teacher_logits, target=None)``: logits (N, C) float, target
    (N,) long class indices or None (then only the distillation term, weight ignored).
    """

    def __init__(self, temperature: float = 2.0, weight: float = 0.5):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        self.temperature, self.weight = temperature, weight

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                target: torch.Tensor | None = None) -> torch.Tensor:
        soft = distillation_loss(student_logits, teacher_logits.detach(), self.temperature)
        if target is None:
            return soft
        hard = F.cross_entropy(student_logits, target)
        return self.weight * soft + (1 - self.weight) * hard

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, weight={self.weight}"
