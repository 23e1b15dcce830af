"""Checks for the gaussian_nll assignment."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..probes.gaussian_nll import PROBES
from . import Check, CheckFailed
from .expect import expect_close, expect_finite_gradient, tensor_result

FUNCTION = "gaussian_nll"
REDUCTIONS = ("none", "mean", "sum")


def reference(mean, target, log_var, full=False, reduction="mean"):
    """PyTorch's Gaussian NLL with ``var = exp(log_var)``, in float64 (eps far below any
    variance drawn here, so its clamp never acts)."""
    loss = F.gaussian_nll_loss(mean.double(), target.double(), log_var.double().exp(),
                               full=full, eps=1e-300, reduction=reduction)
    return loss.to(mean.dtype)


def stable_reference(mean, target, log_var, full=False, reduction="mean"):
    """The same loss written in log-variance, in float64, for variances float64 cannot hold
    as ``exp(log_var)`` either side (used where ``|log_var|`` is large)."""
    log_var64 = log_var.double()
    scaled = (target.double() - mean.double()) * torch.exp(-0.5 * log_var64)
    loss = 0.5 * (log_var64 + scaled ** 2)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(mean.dtype)


def _describe(case):
    mean = case["mean"]
    return (f"{FUNCTION}(mean of shape {tuple(mean.shape)}, {mean.dtype}, "
            f"full={case['full']!r}, reduction={case['reduction']!r})")


def _case(gen, shape, dtype, full, reduction, log_var_scale=2.0):
    mean = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    target = mean + torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5
    log_var = torch.randn(shape, generator=gen, dtype=torch.float64) * log_var_scale
    return {"mean": mean.to(dtype), "target": target.to(dtype), "log_var": log_var.to(dtype),
            "full": full, "reduction": reduction}


def _visible_case():
    return {"mean": torch.tensor([0.0, 1.0, 2.0]), "target": torch.tensor([0.5, 1.0, 0.0]),
            "log_var": torch.tensor([0.0, -1.0, 1.0]), "full": False, "reduction": "mean"}


def _no_banned_calls(outputs):
    used = outputs.get("banned")
    if not isinstance(used, list) or not all(isinstance(name, str) for name in used):
        raise CheckFailed("no well-formed record of the functions your code called")
    if used:
        names = ", ".join(f"`{name}`" for name in used)
        raise CheckFailed("this exercise asks you not to use PyTorch's own Gaussian NLL, but "
                          f"your code ran {names}.")


def _reference_inputs(gen):
    cases = [_visible_case()]
    for shape in ((12,), (5, 4)):
        for dtype in (torch.float32, torch.float64):
            for reduction in REDUCTIONS:
                full = bool(torch.rand((), generator=gen) < 0.5)
                cases.append(_case(gen, shape, dtype, full, reduction))
    return {"cases": cases}


def _judge_reference(inputs, outputs):
    _no_banned_calls(outputs)
    for i, case in enumerate(inputs["cases"]):
        expected = reference(case["mean"], case["target"], case["log_var"], case["full"],
                             case["reduction"])
        expect_close(outputs[str(i)], expected, _describe(case), device=outputs["__device__"],
                     hidden=i > 0)


def _extreme_inputs(gen):
    """Variances beyond float32's exponent range either side (a collapsing or exploding
    variance head): ``exp(log_var)`` is 0 or inf in float32. Mean and target are drawn on the
    scale of the standard deviation, so the true loss is moderate and float32 holds them."""
    cases = []
    visible = torch.tensor([-110.0, 110.0, 0.0], dtype=torch.float64)
    std = torch.exp(0.5 * visible)
    cases.append({"mean": (std * torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64)).float(),
                  "target": (std * torch.tensor([-0.5, -1.0, 2.0], dtype=torch.float64)).float(),
                  "log_var": visible.float(), "full": False, "reduction": "none"})
    for shape, reduction, full in (((8,), "sum", False), ((4, 3), "mean", True)):
        sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).double()
        log_var = sign * (95 + 30 * torch.rand(shape, generator=gen, dtype=torch.float64))
        std = torch.exp(0.5 * log_var)
        mean = std * torch.randn(shape, generator=gen, dtype=torch.float64)
        target = mean + std * torch.randn(shape, generator=gen, dtype=torch.float64)
        cases.append({"mean": mean.float(), "target": target.float(), "log_var": log_var.float(),
                      "full": full, "reduction": reduction})
    return {"cases": cases}


def _judge_extreme(inputs, outputs):
    _no_banned_calls(outputs)
    device = outputs["__device__"]
    for i, case in enumerate(inputs["cases"]):
        what = f"{_describe(case)} at |log_var| up to {float(case['log_var'].abs().max()):.0f}"
        expected = stable_reference(case["mean"], case["target"], case["log_var"],
                                    case["full"], case["reduction"])
        out = outputs[str(i)]
        actual = tensor_result(out, what, device=device, dtype=torch.float32, hidden=i > 0)
        if not bool(torch.isfinite(actual).all()):
            raise CheckFailed(f"{what}: the result contains inf or nan (does the code form "
                              "exp(log_var) or the squared residual on its own?)")
        expect_close(out, expected, what, device=device, hidden=i > 0, atol=1e-4)
        mean = case["mean"].double().clone().requires_grad_(True)
        log_var = case["log_var"].double().clone().requires_grad_(True)
        stable_reference(mean, case["target"].double(), log_var, case["full"],
                         case["reduction"]).sum().backward()
        for name, leaf in (("mean", mean), ("log_var", log_var)):
            expect_finite_gradient(outputs[f"grad_{name}{i}"], leaf.grad,
                                   f"gradient in {name} of {what}", device=device,
                                   dtype=torch.float32)


# --- fitting a model that predicts its own variance ------------------------------------------

GRID = torch.linspace(0.1, 1.9, 19)


def heteroscedastic(gen, n=256):
    """``y = w x + b + noise`` on x in [0, 2], noise std ``s0 + s1 x`` (grows with x)."""
    w = float(torch.rand((), generator=gen)) * 2 - 1
    b = float(torch.rand((), generator=gen)) * 2 - 1
    s0 = 0.05 + 0.1 * float(torch.rand((), generator=gen))
    s1 = 0.25 + 0.25 * float(torch.rand((), generator=gen))
    x = torch.rand(n, generator=gen, dtype=torch.float64) * 2
    y = w * x + b + (s0 + s1 * x) * torch.randn(n, generator=gen, dtype=torch.float64)
    return x, y, (w, b, s0, s1)


def _fit_inputs(gen):
    cases = []
    for dtype in (torch.float32,):
        x, y, _ = heteroscedastic(gen)
        cases.append({"x": x.to(dtype), "y": y.to(dtype), "grid": GRID.to(dtype)})
    return {"cases": cases}


def _truth(x, y):
    """The line and noise the data came from, recovered here from the data alone (the
    inputs the sandbox sees carry no answer): least squares for the line, then least
    squares of ``|residual| * sqrt(pi / 2)`` on x for the standard deviation."""
    design = torch.stack([x.double(), torch.ones_like(x, dtype=torch.float64)], dim=1)
    line = torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.squeeze(1)
    residual = (y.double() - design @ line).abs() * math.sqrt(math.pi / 2)
    noise = torch.linalg.lstsq(design, residual.unsqueeze(1)).solution.squeeze(1)
    return line, noise


def _pair(out, what, device, dtype, length):
    if "error" in out:
        raise CheckFailed(f"{what}: {out['error']}")
    if out.get("kind") != "sequence" or len(out["items"]) != 2:
        raise CheckFailed(f"{what}: expected a pair (mean, log_var) of tensors")
    values = []
    for item, name in zip(out["items"], ("mean", "log_var")):
        value = tensor_result(item, f"{what}, {name}", device=device, dtype=dtype)
        if tuple(value.shape) != (length,):
            raise CheckFailed(f"{what}: expected {name} of shape ({length},), "
                              f"got {tuple(value.shape)}")
        if not bool(torch.isfinite(value).all()):
            raise CheckFailed(f"{what}: {name} contains inf or nan")
        values.append(value.double())
    return values


def _judge_fit(inputs, outputs):
    _no_banned_calls(outputs)
    for i, case in enumerate(inputs["cases"]):
        grid = case["grid"].double()
        what = (f"the model fit_variance_model(x, y) returned, on {len(grid)} points of "
                "[0.1, 1.9]")
        mean, log_var = _pair(outputs[str(i)], what, outputs["__device__"], case["x"].dtype,
                              len(grid))
        line, noise = _truth(case["x"], case["y"])
        true_mean = line[0] * grid + line[1]
        true_std = noise[0] * grid + noise[1]
        std = torch.exp(0.5 * log_var)
        if bool(((mean - true_mean).abs() > 0.5 * true_std + 0.05).any()):
            raise CheckFailed(f"{what}: the predicted mean is off the trend of the data")
        ratio = std / true_std
        if bool((ratio < 0.6).any() or (ratio > 1.6).any()):
            raise CheckFailed(f"{what}: the predicted standard deviation exp(log_var / 2) does "
                              "not track the noise of the data (off by more than a factor "
                              "1.6 somewhere)")
        centred = torch.stack([std - std.mean(), true_std - true_std.mean()])
        correlation = float(torch.corrcoef(centred)[0, 1])
        if not correlation >= 0.9:
            raise CheckFailed(f"{what}: the predicted standard deviation should grow with x "
                              "as the noise does")


CHECKS = [
    Check("gaussian_nll", "reference", "gaussian_nll matches F.gaussian_nll_loss",
          _reference_inputs, PROBES["reference"], _judge_reference),
    Check("gaussian_nll", "extreme", "finite loss and gradients at log_var of +-100 in float32",
          _extreme_inputs, PROBES["extreme"], _judge_extreme),
    Check("gaussian_nll", "fit", "the fitted variance tracks the noise",
          _fit_inputs, PROBES["fit"], _judge_fit),
]
