"""Losses for dense prediction (segmentation): per-pixel cross-entropy, soft Dice, Tversky.

Logits are (N, C, H, W) (or any (N, C, *spatial)), targets (N, H, W) class indices. Math
only (tensors in, tensors out); the chapter's widget lives in ``losslab.figures.dense``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .beyond import _reduce


def pixel_cross_entropy_formula(logits: torch.Tensor, target: torch.Tensor,
                                weight: torch.Tensor | None = None,
                                ignore_index: int = -100) -> torch.Tensor:
    """What ``F.cross_entropy(logits, target, weight, ignore_index=...)`` computes, written out.

    ``logits``: (N, C, *spatial); ``target``: int64 (N, *spatial). Each counted pixel adds
    ``-w[y] log softmax(z)[y]``; the mean divides by the sum of the weights of the counted
    pixels, so ignored pixels change neither the sum nor the divisor.
    """
    log_probs = logits.log_softmax(dim=1)
    counted = target != ignore_index
    safe = target.masked_fill(~counted, 0)
    picked = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    w = torch.ones(logits.shape[1], dtype=logits.dtype, device=logits.device) \
        if weight is None else weight
    pixel_weight = w[safe] * counted
    return -(pixel_weight * picked).sum() / pixel_weight.sum()


def one_hot(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices (N, *spatial) as a float one-hot mask (N, C, *spatial)."""
    if target.dtype != torch.long:
        raise ValueError(f"target must hold int64 class indices; got {target.dtype}")
    return F.one_hot(target, num_classes).movedim(-1, 1).float()


def _sums(probs: torch.Tensor, mask: torch.Tensor, batch: bool):
    """True positives, false positives and false negatives, soft: (N, C), or (C,) if batch."""
    if probs.shape != mask.shape:
        raise ValueError(f"probabilities {tuple(probs.shape)} and mask {tuple(mask.shape)} must "
                         "have one shape (N, C, *spatial)")
    dims = tuple(range(2, probs.ndim))
    if batch:
        dims = (0, *dims)
    tp = (probs * mask).sum(dims)
    fp = (probs * (1 - mask)).sum(dims)
    fn = ((1 - probs) * mask).sum(dims)
    return tp, fp, fn


def soft_dice_loss(probs: torch.Tensor, mask: torch.Tensor, smooth_nr: float = 1e-5,
                   smooth_dr: float = 1e-5, include_background: bool = True,
                   batch: bool = False, reduction: str = "mean") -> torch.Tensor:
    """Soft Dice loss per image and class: ``1 - (2 TP + smooth_nr) / (sum p + sum g + smooth_dr)``.

    ``probs``: (N, C, *spatial) probabilities (softmax over C, or sigmoid); ``mask``: the
    one-hot target of the same shape. ``include_background=False`` drops channel 0;
    ``batch=True`` sums over the batch before the ratio (one Dice per class). Returns the
    reduced loss, or (N, C) (``(C,)`` with ``batch``) for ``reduction="none"``.
    """
    if not include_background:
        probs, mask = probs[:, 1:], mask[:, 1:]
    tp, fp, fn = _sums(probs, mask, batch)
    dice = (2 * tp + smooth_nr) / (2 * tp + fp + fn + smooth_dr)
    return _reduce(1 - dice, reduction)


def tversky_loss(probs: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5,
                 beta: float = 0.5, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5,
                 include_background: bool = True, batch: bool = False,
                 reduction: str = "mean") -> torch.Tensor:
    """Tversky loss: ``1 - (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr)``.

    ``alpha`` weighs false positives, ``beta`` false negatives; alpha = beta = 0.5 is soft
    Dice. Shapes and options as in :func:`soft_dice_loss`.
    """
    if not include_background:
        probs, mask = probs[:, 1:], mask[:, 1:]
    tp, fp, fn = _sums(probs, mask, batch)
    index = (tp + smooth_nr) / (tp + alpha * fp + beta * fn + smooth_dr)
    return _reduce(1 - index, reduction)


def dice_from_logits(logits: torch.Tensor, target: torch.Tensor,
                     ignore_index: int | None = None, **kwargs) -> torch.Tensor:
    """Soft Dice of ``softmax(logits, dim=1)`` against class indices ``target`` (N, *spatial).

    Pixels whose target is ``ignore_index`` count in neither mask. Other keyword arguments go
    to :func:`soft_dice_loss`.
    """
    probs = logits.softmax(dim=1)
    if ignore_index is None:
        return soft_dice_loss(probs, one_hot(target, logits.shape[1]).to(probs.dtype), **kwargs)
    valid = (target != ignore_index).unsqueeze(1).to(probs.dtype)
    mask = one_hot(target.masked_fill(valid[:, 0] == 0, 0), logits.shape[1]).to(probs.dtype)
    return soft_dice_loss(probs * valid, mask * valid, **kwargs)


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                 lambda_ce: float = 1.0, lambda_dice: float = 1.0,
                 include_background: bool = True, smooth: float = 1e-5,
                 ignore_index: int = -100) -> torch.Tensor:
    """``lambda_ce * cross-entropy + lambda_dice * soft Dice``, both from the same logits.

    Cross-entropy gives every pixel a well-behaved gradient from the first step; Dice
    weighs each class by its own size, so a small structure counts as much as a large one.
    Pixels labelled ``ignore_index`` are left out of both.
    """
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    dice = dice_from_logits(logits, target, ignore_index=ignore_index, smooth_nr=smooth,
                            smooth_dr=smooth, include_background=include_background)
    return lambda_ce * ce + lambda_dice * dice


class CEDiceLoss(nn.Module):
    """:func:`ce_dice_loss` as a module: ``CEDiceLoss(weight=...)(logits, target)``.

    ``weight`` (C,) weighs the cross-entropy's classes and moves with ``.to(device)``.
    """

    def __init__(self, weight: torch.Tensor | None = None, lambda_ce: float = 1.0,
                 lambda_dice: float = 1.0, include_background: bool = True,
                 ignore_index: int = -100):
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))
        self.lambda_ce, self.lambda_dice = lambda_ce, lambda_dice
        self.include_background = include_background

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ce_dice_loss(logits, target, weight=self.weight, lambda_ce=self.lambda_ce,
                            lambda_dice=self.lambda_dice,
                            include_background=self.include_background,
                            ignore_index=self.ignore_index)

    def extra_repr(self) -> str:
        return (f"lambda_ce={self.lambda_ce}, lambda_dice={self.lambda_dice}, "
                f"include_background={self.include_background}, "
                f"ignore_index={self.ignore_index}")
