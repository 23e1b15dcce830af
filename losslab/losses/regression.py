"""Regression losses: reference formulas, analytic gradients and PyTorch forms.

Every function takes torch tensors and returns torch tensors unless it says otherwise.
Elementwise losses follow PyTorch's argument order ``(input, target, ...)`` and return
the per-element loss, as ``reduction="none"`` would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .curves import LossFn

# --- regression: written-out formulas -------------------------------------------------------

def mse_formula(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error ``(input - target)**2`` per element."""
    return (input - target) ** 2


def l1_formula(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error ``|input - target|`` per element."""
    return (input - target).abs()


def huber_formula(input: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber loss: ``e**2 / 2`` while ``|e| <= delta``, then ``delta * (|e| - delta / 2)``."""
    err = (input - target).abs()
    return torch.where(err <= delta, 0.5 * err**2, delta * (err - 0.5 * delta))


def smooth_l1_formula(input: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """SmoothL1 loss: ``e**2 / (2 beta)`` while ``|e| < beta``, then ``|e| - beta / 2``."""
    err = (input - target).abs()
    return torch.where(err < beta, 0.5 * err**2 / beta, err - 0.5 * beta)


# --- regression: analytic derivatives with respect to ``input`` ------------------------------

def mse_grad(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d/d input of the squared error: ``2 e``."""
    return 2 * (input - target)


def l1_grad(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d/d input of the absolute error: ``sign(e)`` (0 at e = 0, as autograd gives)."""
    return torch.sign(input - target)


def huber_grad(input: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """d/d input of Huber: the error clipped to ``[-delta, delta]``."""
    return (input - target).clamp(-delta, delta)


def smooth_l1_grad(input: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """d/d input of SmoothL1: ``e / beta`` clipped to ``[-1, 1]``."""
    return ((input - target) / beta).clamp(-1.0, 1.0)


# --- regression: the torch.nn.functional forms the widgets plot ------------------------------

def mse(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.mse_loss`` per element."""
    return F.mse_loss(input, target, reduction="none")


def l1(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.l1_loss`` per element."""
    return F.l1_loss(input, target, reduction="none")


def huber(input: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """``F.huber_loss`` per element."""
    return F.huber_loss(input, target, reduction="none", delta=float(delta))


def smooth_l1(input: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """``F.smooth_l1_loss`` per element."""
    return F.smooth_l1_loss(input, target, reduction="none", beta=float(beta))


@dataclass(frozen=True)
class LossEntry:
    """One loss as the course presents it: the PyTorch form, the formula and its derivative."""

    torch_fn: LossFn
    formula: LossFn
    grad: LossFn
    params: tuple[str, ...] = ()


REGRESSION: dict[str, LossEntry] = {
    "MSE": LossEntry(mse, mse_formula, mse_grad),
    "L1": LossEntry(l1, l1_formula, l1_grad),
    "Huber": LossEntry(huber, huber_formula, huber_grad, ("delta",)),
    "SmoothL1": LossEntry(smooth_l1, smooth_l1_formula, smooth_l1_grad, ("beta",)),
}


def weighted_mse(
    input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """Mean squared error with a weight per sample.

    ``input``, ``target``: float tensors of shape (N,) or (N, D); ``weight``: shape (N,),
    non-negative. Returns a scalar: ``sum(w * e**2) / sum(w)`` per output column averaged,
    or ``sum(w * e**2) / N`` (divided by D too) when ``normalize`` is False.
    """
    if weight.dim() != 1 or weight.shape[0] != input.shape[0]:
        raise ValueError(
            f"weight must have shape ({input.shape[0]},) to give one weight per sample; "
            f"got shape {tuple(weight.shape)}"
        )
    sq = (input - target) ** 2
    w = weight.reshape(-1, *([1] * (sq.dim() - 1))).to(sq.dtype)
    if normalize:
        return (w * sq).sum() / (weight.sum() * (sq.numel() // sq.shape[0]))
    return (w * sq).mean()
