"""Probabilistic losses: negative log-likelihoods of a categorical, a Poisson and a Gaussian.

Each ``*_formula`` writes the loss out as the course states it and takes the same
arguments as its ``torch.nn.functional`` twin, ``reduction`` included; the ``*_grad``
functions are the analytic derivatives in ``input`` of the per-element loss.
"""

from __future__ import annotations

import math

import torch


def reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-element loss)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum'; got {reduction!r}")


def nll_formula(log_probs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                ignore_index: int = -100, reduction: str = "mean") -> torch.Tensor:
    """Negative log-likelihood ``-w[y] * log_probs[n, y]`` of the target class.

    ``log_probs`` is float (N, C) or (N, C, d1, ...); ``target`` long (N,) or (N, d1, ...).
    Positions whose target is ``ignore_index`` count neither in the sum nor in the mean,
    and ``"mean"`` divides by the sum of the weights of the counted targets.
    """
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    picked = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    w = torch.ones(log_probs.shape[1], dtype=log_probs.dtype) if weight is None else weight
    w_n = torch.where(keep, w[safe], torch.zeros((), dtype=log_probs.dtype))
    loss = -w_n * picked
    if reduction == "mean":
        return loss.sum() / w_n.sum()
    return reduce(loss, reduction)


def stirling_term(target: torch.Tensor) -> torch.Tensor:
    """Stirling's approximation of ``log(target!)``, which ``full=True`` adds for target > 1.

    ``y log y - y + log(2 pi y) / 2``; PyTorch adds nothing where ``target <= 1``.
    """
    safe = torch.where(target > 1, target, torch.ones_like(target))
    term = safe * torch.log(safe) - safe + 0.5 * torch.log(2 * math.pi * safe)
    return torch.where(target > 1, term, torch.zeros_like(term))


def poisson_nll_formula(input: torch.Tensor, target: torch.Tensor, log_input: bool = True,
                        full: bool = False, eps: float = 1e-8,
                        reduction: str = "mean") -> torch.Tensor:
    """Poisson negative log-likelihood of counts ``target`` under a predicted rate.

    With ``log_input`` the input is the log-rate θ and the loss ``exp(θ) - y θ``; without it
    the input is the rate λ and the loss ``λ - y log(λ + eps)``. ``full`` adds the Stirling
    term for ``log(y!)``, which does not depend on the input. Same shape for both tensors.
    """
    if log_input:
        loss = torch.exp(input) - target * input
    else:
        loss = input - target * torch.log(input + eps)
    if full:
        loss = loss + stirling_term(target)
    return reduce(loss, reduction)


def poisson_nll_grad(input: torch.Tensor, target: torch.Tensor, log_input: bool = True,
                     eps: float = 1e-8) -> torch.Tensor:
    """d/d input: ``exp(θ) - y`` for a log-rate, ``1 - y / (λ + eps)`` for a rate."""
    if log_input:
        return torch.exp(input) - target
    return 1 - target / (input + eps)


def gaussian_nll_formula(input: torch.Tensor, target: torch.Tensor, var: torch.Tensor,
                         full: bool = False, eps: float = 1e-6,
                         reduction: str = "mean") -> torch.Tensor:
    """Gaussian negative log-likelihood with a predicted variance per element.

    ``(log max(var, eps) + (input - target)**2 / max(var, eps)) / 2``, plus ``log(2 pi) / 2``
    with ``full``. ``var`` is positive float, the shape of ``input`` or broadcastable to it
    (for example (N, 1) for one variance per sample). As in PyTorch, the clamp at ``eps``
    is invisible to autograd: below ``eps`` the gradient is that at ``eps``.
    """
    if var.dim() == input.dim() - 1 and var.shape == input.shape[:-1]:
        var = var.unsqueeze(-1)
    clamped = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (torch.log(clamped) + (input - target) ** 2 / clamped)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce(loss, reduction)


def gaussian_nll_grads(input: torch.Tensor, target: torch.Tensor, var: torch.Tensor,
                       eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Analytic derivatives of the per-element loss: ``(d/d input, d/d var)``.

    ``e / v`` and ``(1 / v - e**2 / v**2) / 2`` with ``e = input - target`` and
    ``v = max(var, eps)``.
    """
    v = var.clamp(min=eps)
    err = input - target
    return err / v, 0.5 * (1 / v - err**2 / v**2)


def heteroscedastic_data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``y = x / 2 + noise`` whose noise grows with ``|x|``: std ``0.1 + 0.4 |x|``.

    ``x`` is (n, 1) float32, uniform on [-2, 2]; ``y`` (n, 1) float32.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=gen) * 4 - 2
    return x, 0.5 * x + (0.1 + 0.4 * x.abs()) * torch.randn(n, 1, generator=gen)


def fit_mean_and_variance(x: torch.Tensor, y: torch.Tensor, steps: int = 400,
                          seed: int = 0) -> torch.nn.Module:
    """Train a small network to predict a mean and a variance per input with GaussianNLLLoss.

    ``x``, ``y``: float (n, 1). The network returns ``(mean, var)``, each (n, 1); the
    variance comes out of a softplus, so it is positive.
    """
    torch.manual_seed(seed)
    body = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))

    class MeanAndVariance(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, inputs):
            mean, raw = self.body(inputs).unbind(dim=1)
            return mean.unsqueeze(1), torch.nn.functional.softplus(raw).unsqueeze(1) + 1e-4

    model = MeanAndVariance()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    loss_fn = torch.nn.GaussianNLLLoss()
    for _ in range(steps):
        opt.zero_grad()
        mean, var = model(x)
        loss_fn(mean, y, var).backward()
        opt.step()
    return model
