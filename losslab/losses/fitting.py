"""Fitting a line under a chosen loss, for many data sets at once."""

from __future__ import annotations

from collections.abc import Callable

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def line_data(
    n: int = 30,
    n_outliers: int = 0,
    outlier_shift: float = 0.0,
    slope: float = 2.0,
    intercept: float = 1.0,
    noise: float = 0.3,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on ``y = slope * x + intercept`` plus noise, x evenly over [0, 5].

    The ``n_outliers`` points with the largest x are moved up by ``outlier_shift``.
    The noise depends only on ``seed``, so two calls that differ only in the outliers
    share every other point. Returns ``(x, y)``, each of shape (n,).
    """
    if not 0 <= n_outliers <= n:
        raise ValueError(f"n_outliers must be between 0 and n={n}; got {n_outliers}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(0.0, 5.0, n, dtype=dtype)
    y = slope * x + intercept + noise * torch.randn(n, generator=gen, dtype=dtype)
    if n_outliers:
        y[n - n_outliers:] += outlier_shift
    return x, y


def fit_lines(
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    steps: int = 1500,
    lr: float = 0.05,
) -> torch.Tensor:
    """Fit ``y ≈ w * x + b`` under ``loss_fn`` (elementwise) for a batch of data sets.

    ``x``, ``y``: float tensors of shape (S, n) or (n,); each row is one data set, fitted
    independently by full-batch Adam with a decaying step. Returns ``(S, 2)`` (or ``(2,)``)
    holding ``[w, b]`` per data set, on ``x``'s device and dtype.
    """
    single = x.dim() == 1
    x2, y2 = (x[None], y[None]) if single else (x, y)
    if x2.shape != y2.shape or x2.dim() != 2:
        raise ValueError(
            "x and y must both have shape (S, n) or (n,); "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    # Start from the least-squares line: the robust fits then only have to move away from it.
    params = least_squares(x2, y2).clone().requires_grad_(True)
    opt = torch.optim.Adam([params], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 1e-3)
    for _ in range(steps):
        opt.zero_grad()
        pred = params[:, :1] * x2 + params[:, 1:]
        # Sum over data sets, mean within each: every set gets its own independent fit.
        loss_fn(pred, y2).mean(dim=1).sum().backward()
        opt.step()
        sched.step()
    out = params.detach()
    return out[0] if single else out


def least_squares(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Closed-form MSE line for each row: returns ``(S, 2)`` of ``[w, b]``."""
    xm, ym = x.mean(dim=1, keepdim=True), y.mean(dim=1, keepdim=True)
    w = ((x - xm) * (y - ym)).sum(dim=1) / ((x - xm) ** 2).sum(dim=1)
    b = ym[:, 0] - w * xm[:, 0]
    return torch.stack([w, b], dim=1)
