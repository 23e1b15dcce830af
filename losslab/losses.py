"""Loss math shared by the chapters: reference formulas, analytic gradients and curves.

Every function takes torch tensors and returns torch tensors unless it says otherwise.
Elementwise losses follow PyTorch's argument order ``(input, target, ...)`` and return
the per-element loss, as ``reduction="none"`` would.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

LossFn = Callable[..., torch.Tensor]


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


# --- curves ----------------------------------------------------------------------------------

def accepted_params(fn: LossFn) -> set[str]:
    """Names of the keyword parameters ``fn`` accepts beyond ``(input, target)``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set()
    names = list(sig.parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return {"*"}
    return set(names[2:])


def loss_and_grad(
    fn: LossFn,
    input: torch.Tensor,
    target: torch.Tensor | float = 0.0,
    **params,
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate an elementwise loss and its autograd derivative with respect to ``input``.

    ``input``: 1-D float tensor of points; ``target``: tensor broadcastable to it, or a float.
    Returns two float64 arrays of ``input``'s length: the loss and d loss / d input.
    Raises ``ValueError`` if ``fn`` does not return one loss per point.
    """
    x = input.detach().clone().requires_grad_(True)
    tgt = target if isinstance(target, torch.Tensor) else torch.full_like(x, float(target))
    out = fn(x, tgt, **params)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"a loss function must return a torch.Tensor; got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(
            "a loss function plotted as a curve must return one loss per point "
            f"(reduction='none'): expected shape {tuple(x.shape)}, got {tuple(out.shape)}"
        )
    (grad,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    return out.detach().double().numpy(), grad.detach().double().numpy()


def curve_grid(
    fn: LossFn,
    input: torch.Tensor,
    grid: Mapping[str, Sequence],
    target: torch.Tensor | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and gradient curves of ``fn`` over every combination of the parameters in ``grid``.

    Returns two arrays of shape ``(*[len(v) for v in grid.values()], len(input))``.
    """
    names = list(grid)
    shape = tuple(len(grid[n]) for n in names)
    values = np.empty((*shape, input.numel()))
    grads = np.empty_like(values)
    for idx in np.ndindex(*shape) if shape else [()]:
        params = {n: grid[n][i] for n, i in zip(names, idx)}
        values[idx], grads[idx] = loss_and_grad(fn, input, target, **params)
    return values, grads
