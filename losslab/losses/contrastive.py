"""Contrastive losses: InfoNCE / NT-Xent, CLIP's symmetric loss, supervised contrastive.

Each is cross-entropy over a matrix of similarities divided by a temperature. Math only
(tensors in, tensors out); the chapter's widget lives in ``losslab.figures.contrastive``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .beyond import REDUCTIONS, _reduce


def _check_embeddings(name: str, x: torch.Tensor) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must be embeddings of shape (N, D); got shape {tuple(x.shape)}")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")


def cosine_similarities(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` (N, D) with every row of ``b`` (M, D): (N, M)."""
    _check_embeddings("a", a)
    _check_embeddings("b", b)
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


def info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: float = 0.1,
             reduction: str = "mean") -> torch.Tensor:
    """InfoNCE with in-batch negatives: the positive of ``query[i]`` is ``keys[i]``.

    ``query``, ``keys``: float (N, D). Logits are cosine similarities over ``temperature``,
    (N, N); row i is a classification of query i over the N keys, with the answer i, so the
    other N - 1 keys of the batch are its negatives. Returns the reduced loss, or (N,).
    """
    _check_temperature(temperature)
    if query.shape != keys.shape:
        raise ValueError(f"query and keys must have one shape (N, D); got {tuple(query.shape)} "
                         f"and {tuple(keys.shape)}")
    logits = cosine_similarities(query, keys) / temperature
    target = torch.arange(len(query), device=query.device)
    return F.cross_entropy(logits, target, reduction=reduction)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5,
            reduction: str = "mean") -> torch.Tensor:
    """SimCLR's NT-Xent: two views ``z1``, ``z2`` (N, D) of the same N examples.

    The 2N embeddings are compared with each other; each one's positive is the other view
    of its example, its negatives the other 2N - 2 embeddings, and its similarity to itself
    is left out (set to -inf before the softmax). Returns the reduced loss, or (2N,) in the
    order ``z1`` then ``z2``.
    """
    _check_temperature(temperature)
    if z1.shape != z2.shape:
        raise ValueError(f"the two views must have one shape (N, D); got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)}")
    n = len(z1)
    z = torch.cat([z1, z2])
    logits = cosine_similarities(z, z) / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target, reduction=reduction)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
              reduction: str = "mean") -> torch.Tensor:
    """CLIP's symmetric loss: cross-entropy over images (rows) and over texts (columns).

    ``image_emb``, ``text_emb``: (N, D), pair i matches. ``logit_scale`` is the *log* of the
    inverse temperature (a scalar tensor, usually learned): logits are
    ``exp(logit_scale) * cos``. Returns the mean of the two directions (reduced, or (N,)
    per pair when ``reduction="none"``).
    """
    logits = logit_scale.exp() * cosine_similarities(image_emb, text_emb)
    target = torch.arange(len(logits), device=logits.device)
    per_image = F.cross_entropy(logits, target, reduction="none")
    per_text = F.cross_entropy(logits.T, target, reduction="none")
    return _reduce((per_image + per_text) / 2, reduction)


class InfoNCELoss(nn.Module):
    """:func:`info_nce` as a module: ``InfoNCELoss(temperature)(query, keys)``."""

    def __init__(self, temperature: float = 0.1, reduction: str = "mean"):
        super().__init__()
        _check_temperature(temperature)
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
        self.temperature, self.reduction = temperature, reduction

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return info_nce(query, keys, self.temperature, self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class CLIPLoss(nn.Module):
    """CLIP's loss with its learnable logit scale, started at 1 / 0.07 and capped at 100.

    The scale is learned as a log so it stays positive; CLIP clamps it at log(100) so the
    logits cannot grow without bound. ``forward(image_emb, text_emb)`` returns a scalar.
    """

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        _check_temperature(init_temperature)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))
        self.max_log_scale = math.log(max_scale)

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        scale = self.logit_scale.clamp(max=self.max_log_scale)
        return clip_loss(image_emb, text_emb, scale)


def supcon(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1,
           reduction: str = "mean") -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., 2020, the L_out form).

    ``features``: float (N, D); ``labels``: int64 (N,). Every other example with the same
    label is a positive. For anchor i,
    ``-1/|P(i)| sum_{p in P(i)} log(exp(s_ip / t) / sum_{a != i} exp(s_ia / t))``.
    Anchors without a positive are left out; ``reduction="none"`` gives (N,) with 0 for
    them, ``"mean"`` averages over the anchors that have one.
    """
    _check_temperature(temperature)
    if labels.shape != features.shape[:1]:
        raise ValueError(f"labels must have shape ({len(features)},); got {tuple(labels.shape)}")
    n = len(features)
    logits = cosine_similarities(features, features) / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
    log_prob = logits.masked_fill(self_mask, float("-inf")).log_softmax(dim=1)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    count = positives.sum(dim=1)
    summed = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    per_anchor = -summed / count.clamp(min=1)
    if reduction == "mean":
        has = count > 0
        if not has.any():
            raise ValueError("supcon needs at least two examples with one label; every "
                             f"label of {labels.tolist()} appears once")
        return per_anchor[has].mean()
    return _reduce(per_anchor, reduction)


def triplet_softplus(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """InfoNCE with one negative, per example: ``softplus((s_an - s_ap) / t)`` (N,).

    The smooth version of a triplet hinge on cosine similarities with margin 0: the link
    between InfoNCE and the triplet loss.
    """
    s_ap = F.cosine_similarity(anchor, positive, dim=1)
    s_an = F.cosine_similarity(anchor, negative, dim=1)
    return F.softplus((s_an - s_ap) / temperature)


def loss_from_similarities(s_pos: torch.Tensor, s_neg: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """InfoNCE of anchors from their similarities: ``s_pos`` (...), ``s_neg`` (..., K).

    ``-log(exp(s_pos / t) / (exp(s_pos / t) + sum_k exp(s_neg_k / t)))`` for each anchor,
    as cross-entropy with the positive as class 0. Returns (...).
    """
    _check_temperature(temperature)
    if s_neg.shape[:-1] != s_pos.shape:
        raise ValueError(f"s_neg must have shape {tuple(s_pos.shape)} + (K,); got "
                         f"{tuple(s_neg.shape)}")
    logits = torch.cat([s_pos.unsqueeze(-1), s_neg], dim=-1) / temperature
    return -logits.log_softmax(dim=-1)[..., 0]
