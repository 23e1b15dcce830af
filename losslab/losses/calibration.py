"""Calibration: confidence against accuracy, expected calibration error, temperature scaling.

Tensors in, tensors out. Binning follows the usual convention (and ``torchmetrics``'):
``n_bins`` equal-width bins of the confidence, each closed on the left, ``[k/n, (k+1)/n)``;
here the last bin is closed on both sides, so a confidence of exactly 1 falls in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def top_label(probs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Confidence (the largest probability) and correctness (1.0 where the class with it is
    ``target``) of each row of ``probs`` (N, C); ``target`` holds class indices (N,)."""
    if probs.dim() != 2 or target.shape != probs.shape[:1]:
        raise ValueError("probs must be (N, C) and target (N,); "
                         f"got {tuple(probs.shape)} and {tuple(target.shape)}")
    confidence, predicted = probs.max(dim=1)
    return confidence, (predicted == target).to(probs.dtype)


@dataclass
class Bins:
    """Per bin: mean confidence, accuracy (share correct), and share of all examples.
    Empty bins hold NaN confidence and accuracy and a share of 0."""

    confidence: torch.Tensor
    accuracy: torch.Tensor
    share: torch.Tensor


def bin_index(confidence: torch.Tensor, n_bins: int) -> torch.Tensor:
    """The bin of each confidence in [0, 1]: ``floor(c * n_bins)``, with 1 in the last bin."""
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    if ((confidence < 0) | (confidence > 1)).any():
        raise ValueError("confidences must lie in [0, 1]; got values from "
                         f"{confidence.min().item()} to {confidence.max().item()}")
    edges = torch.linspace(0, 1, n_bins + 1, dtype=confidence.dtype, device=confidence.device)
    return (torch.bucketize(confidence, edges, right=True) - 1).clamp(max=n_bins - 1)


def reliability(confidence: torch.Tensor, correct: torch.Tensor, n_bins: int = 10) -> Bins:
    """The reliability diagram's numbers for 1-D ``confidence`` and ``correct`` (0/1)."""
    if confidence.dim() != 1 or confidence.shape != correct.shape:
        raise ValueError("confidence and correct must be 1-D of one length; got "
                         f"{tuple(confidence.shape)} and {tuple(correct.shape)}")
    idx = bin_index(confidence, n_bins)
    zeros = torch.zeros(n_bins, dtype=confidence.dtype, device=confidence.device)
    count = zeros.index_add(0, idx, torch.ones_like(confidence))
    conf = zeros.index_add(0, idx, confidence) / count
    acc = zeros.index_add(0, idx, correct.to(confidence.dtype)) / count
    return Bins(conf, acc, count / count.sum())


def ece(confidence: torch.Tensor, correct: torch.Tensor, n_bins: int = 15) -> torch.Tensor:
    """Expected calibration error: ``sum_b share_b * |accuracy_b - confidence_b|``."""
    bins = reliability(confidence, correct, n_bins)
    gap = (bins.accuracy - bins.confidence).abs().nan_to_num(0.0)
    return (bins.share * gap).sum()


def multiclass_ece(logits: torch.Tensor, target: torch.Tensor, n_bins: int = 15,
                   temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Top-label ECE of ``softmax(logits / temperature)`` (N, C) against class indices."""
    conf, correct = top_label(F.softmax(logits / temperature, dim=1), target)
    return ece(conf, correct, n_bins)


def binary_ece(logits: torch.Tensor, target: torch.Tensor, n_bins: int = 15) -> torch.Tensor:
    """ECE of the positive-class probability ``sigmoid(logits)`` (N,) against 0/1 targets:
    in each bin, the mean predicted probability against the share of positives."""
    return ece(torch.sigmoid(logits), target, n_bins)


def nll(logits: torch.Tensor, target: torch.Tensor, temperature: float | torch.Tensor = 1.0
        ) -> torch.Tensor:
    """Mean negative log-likelihood of ``target`` under ``softmax(logits / temperature)``."""
    return F.cross_entropy(logits / temperature, target)


def nll_temperature_grad(logits: torch.Tensor, target: torch.Tensor,
                         temperature: float | torch.Tensor) -> torch.Tensor:
    """d NLL / d T in closed form: ``mean_i (z_{i,y} - sum_k p_ik z_ik) / T**2`` with
    ``p = softmax(z / T)``: negative while the true logit is above the softmax-weighted mean."""
    p = F.softmax(logits / temperature, dim=1)
    true = logits.gather(1, target[:, None])[:, 0]
    return (true - (p * logits).sum(dim=1)).mean() / temperature ** 2


def fit_temperature(logits: torch.Tensor, target: torch.Tensor, lo: float = 0.05,
                    hi: float = 20.0, iters: int = 100) -> float:
    """The temperature that minimises the held-out NLL of ``logits`` (N, C).

    The NLL is convex in 1/T, so its derivative in T changes sign once on ``[lo, hi]``;
    bisection on the sign of :func:`nll_temperature_grad` finds it (to about 1e-12 relative).
    Returns ``lo`` or ``hi`` if the minimum lies outside.
    """
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi; got lo={lo}, hi={hi}")
    logits = logits.detach()
    a, b = lo, hi
    if nll_temperature_grad(logits, target, a) >= 0:
        return a
    if nll_temperature_grad(logits, target, b) <= 0:
        return b
    for _ in range(iters):
        mid = (a * b) ** 0.5
        if nll_temperature_grad(logits, target, mid) < 0:
            a = mid
        else:
            b = mid
    return (a * b) ** 0.5


def softmax_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                       reduction: str = "mean") -> torch.Tensor:
    """Multi-class focal loss ``-(1 - p_t)**gamma * log p_t`` from logits (N, C) and class
    indices (N,); ``gamma = 0`` is ``F.cross_entropy``."""
    if gamma < 0:
        raise ValueError(f"gamma must be at least 0; got {gamma}")
    log_p_t = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
    loss = -((1 - log_p_t.exp()) ** gamma) * log_p_t
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum'; got {reduction!r}")
