"""Loss and autograd gradient curves of any elementwise loss function.

``fn(input, target, **params)`` returns one loss per point (``reduction="none"``); these
helpers evaluate it and its derivative with respect to ``input`` as float64 arrays.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

LossFn = Callable[..., torch.Tensor]


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
