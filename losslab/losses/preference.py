"""Preference losses for fine-tuning language models: DPO, and the z-loss on the log-partition.

Math only (tensors in, tensors out); the chapter's widget lives in
``losslab.figures.preference``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .beyond import REDUCTIONS, _reduce


def sequence_log_probs(logits: torch.Tensor, labels: torch.Tensor,
                       ignore_index: int = -100) -> torch.Tensor:
    """The log-probability a model gives to each whole response: (N,).

    ``logits``: float (N, L, V), the prediction for each position; ``labels``: int64 (N, L),
    the response's tokens at those positions, ``ignore_index`` where a position is the
    prompt or padding. The sum over counted positions of ``log_softmax(logits)[label]``.
    """
    if logits.shape[:2] != labels.shape:
        raise ValueError(f"labels must have shape {tuple(logits.shape[:2])} (N, L); got "
                         f"{tuple(labels.shape)}")
    counted = labels != ignore_index
    safe = labels.masked_fill(~counted, 0)
    per_token = logits.log_softmax(-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return (per_token * counted).sum(-1)


def dpo_margin(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
               ref_chosen: torch.Tensor, ref_rejected: torch.Tensor) -> torch.Tensor:
    """The log-ratio margin ``(log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))``."""
    return (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
             ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float = 0.1,
             label_smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Direct preference optimisation (Rafailov et al., 2023) from sequence log-probabilities.

    Each argument is (N,): the log-probability of the chosen (``y_w``) or rejected
    (``y_l``) response under the policy being trained or the frozen reference model.
    Per pair: ``-log sigmoid(beta * margin)``; with ``label_smoothing`` eps (the
    "conservative" variant, for preferences flipped with probability eps),
    ``-(1 - eps) log sigmoid(beta m) - eps log sigmoid(-beta m)``: binary cross-entropy
    on the logit ``beta * m`` with target ``1 - eps``.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0; got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5); got {label_smoothing}")
    logits = beta * dpo_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    loss = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    return _reduce(loss, reduction)


class DPOLoss(nn.Module):
    """:func:`dpo_loss` as a module:
    ``DPOLoss(beta)(policy_chosen, policy_rejected, ref_chosen, ref_rejected)``."""

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__()
        if beta <= 0:
            raise ValueError(f"beta must be > 0; got {beta}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
        self.beta, self.label_smoothing, self.reduction = beta, label_smoothing, reduction

    def forward(self, policy_chosen, policy_rejected, ref_chosen, ref_rejected) -> torch.Tensor:
        return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta,
                        self.label_smoothing, self.reduction)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, label_smoothing={self.label_smoothing}"


def implicit_rewards(policy: torch.Tensor, ref: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's implicit reward of a response: ``beta * (log pi(y) - log ref(y))``."""
    return beta * (policy - ref).detach()


def z_loss(logits: torch.Tensor, weight: float = 1e-4, ignore_mask: torch.Tensor | None = None
           ) -> torch.Tensor:
    """The z-loss: ``weight * mean(logsumexp(logits, -1) ** 2)``.

    ``logits``: (..., V). It pulls the log-partition log Z towards 0, so the softmax's
    normaliser stays near 1 and the logits cannot drift to values where bfloat16 rounds
    them coarsely; cross-entropy itself cannot see such a drift, since adding a constant
    to every logit leaves it unchanged. ``ignore_mask``: bool (...), True where a position
    is padding and left out of the mean.
    """
    log_z = torch.logsumexp(logits, dim=-1)
    sq = log_z ** 2
    if ignore_mask is None:
        return weight * sq.mean()
    keep = ~ignore_mask
    return weight * (sq * keep).sum() / keep.sum().clamp(min=1)
