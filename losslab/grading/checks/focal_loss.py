"""Checks for the focal_loss assignment."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..probes.focal_loss import PROBES
from . import Check
from .expect import expect_close, expect_finite_gradient

FUNCTION = "focal_loss"
REDUCTIONS = ("none", "mean", "sum")


def reference(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """Sigmoid focal loss (Lin et al., 2017), computed in float64."""
    logits64, target64 = logits.double(), target.double()
    ce = F.binary_cross_entropy_with_logits(logits64, target64, reduction="none")
    probs = torch.sigmoid(logits64)
    p_t = probs * target64 + (1 - probs) * (1 - target64)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * target64 + (1 - alpha) * (1 - target64))
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(logits.dtype)


def _case(gen, shape, dtype, scale=2.0):
    logits = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)
    target = (torch.rand(shape, generator=gen, dtype=torch.float64) < 0.3).to(dtype)
    return logits, target


def _describe(case):
    logits = case["logits"]
    options = ", ".join(f"{k}={case[k]!r}" for k in ("alpha", "gamma", "reduction"))
    return f"{FUNCTION}(logits of shape {tuple(logits.shape)}, {logits.dtype}, {options})"


def _judge_cases(inputs, outputs, hidden_from=0):
    for i, case in enumerate(inputs["cases"]):
        expected = reference(case["logits"], case["target"], case["alpha"], case["gamma"],
                             case["reduction"])
        expect_close(outputs[str(i)], expected, _describe(case), device=outputs["__device__"],
                     hidden=i >= hidden_from)


def _visible_case():
    return {
        "logits": torch.tensor([2.0, -1.0, 0.5, -3.0]),
        "target": torch.tensor([1.0, 0.0, 0.0, 1.0]),
        "alpha": 0.25, "gamma": 2.0, "reduction": "mean",
    }


def _reference_inputs(gen):
    cases = [_visible_case()]
    for shape in ((16,), (8, 5)):
        for dtype in (torch.float32, torch.float64):
            for reduction in REDUCTIONS:
                logits, target = _case(gen, shape, dtype)
                alpha = float(torch.rand((), generator=gen)) * 0.8 + 0.1
                gamma = float(torch.rand((), generator=gen)) * 3.0 + 0.5
                cases.append({"logits": logits, "target": target, "alpha": alpha,
                              "gamma": gamma, "reduction": reduction})
    return {"cases": cases}


def _gamma_zero_inputs(gen):
    cases = []
    visible_logits = torch.tensor([1.5, -0.5, 3.0])
    visible_target = torch.tensor([1.0, 0.0, 0.0])
    cases.append({"logits": visible_logits, "target": visible_target, "alpha": None,
                  "gamma": 0.0, "reduction": "mean"})
    for shape, alpha in (((32,), 0.25), ((6, 4), 0.7), ((10,), None)):
        logits, target = _case(gen, shape, torch.float64)
        cases.append({"logits": logits, "target": target, "alpha": alpha, "gamma": 0.0,
                      "reduction": "sum"})
    return {"cases": cases}


def _judge_gamma_zero(inputs, outputs):
    # With gamma = 0 the focal term vanishes: alpha-weighted binary cross-entropy remains.
    for i, case in enumerate(inputs["cases"]):
        logits, target = case["logits"].double(), case["target"].double()
        weight = None
        if case["alpha"] is not None:
            weight = case["alpha"] * target + (1 - case["alpha"]) * (1 - target)
        expected = F.binary_cross_entropy_with_logits(
            logits, target, weight=weight, reduction=case["reduction"]
        ).to(case["logits"].dtype)
        what = f"gamma=0 should give alpha-weighted binary cross-entropy: {_describe(case)}"
        expect_close(outputs[str(i)], expected, what, device=outputs["__device__"], hidden=i > 0)


def _extreme_inputs(gen):
    visible = torch.tensor([100.0, -100.0, 100.0, -100.0])
    visible_target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    logits, target = _case(gen, (6, 3), torch.float32)
    logits = logits.sign() * 100.0
    logits64, target64 = _case(gen, (12,), torch.float64, scale=60.0)
    return {"cases": [
        {"logits": visible, "target": visible_target, "alpha": 0.25, "gamma": 2.0,
         "reduction": "none"},
        {"logits": logits, "target": target, "alpha": 0.25, "gamma": 2.0, "reduction": "sum"},
        {"logits": logits64, "target": target64, "alpha": 0.5, "gamma": 1.5,
         "reduction": "mean"},
    ]}


def _judge_extreme(inputs, outputs):
    _judge_cases(inputs, outputs, hidden_from=1)
    for i, case in enumerate(inputs["cases"]):
        leaf = case["logits"].double().clone().requires_grad_(True)
        reference(leaf, case["target"].double(), case["alpha"], case["gamma"],
                  case["reduction"]).sum().backward()
        expect_finite_gradient(outputs[f"grad{i}"], leaf.grad, f"gradient of {_describe(case)}",
                               device=outputs["__device__"], dtype=case["logits"].dtype)


def _placement_inputs(gen):
    cases = []
    for dtype in (torch.float64, torch.float32):
        for reduction in REDUCTIONS:
            logits, target = _case(gen, (5, 2), dtype)
            cases.append({"logits": logits, "target": target, "alpha": 0.25, "gamma": 2.0,
                          "reduction": reduction})
    return {"cases": cases}


CHECKS = [
    Check("focal_loss", "reference", "focal_loss matches the reference",
          _reference_inputs, PROBES["reference"],
          lambda i, o: _judge_cases(i, o, hidden_from=1)),
    Check("focal_loss", "gamma_zero", "gamma=0 reduces to alpha-weighted BCE",
          _gamma_zero_inputs, PROBES["gamma_zero"], _judge_gamma_zero),
    Check("focal_loss", "extreme_logits", "no inf or nan at |logit| = 100, finite gradients",
          _extreme_inputs, PROBES["extreme_logits"], _judge_extreme),
    Check("focal_loss", "device_dtype", "results keep the input's device, dtype and shape",
          _placement_inputs, PROBES["device_dtype"],
          lambda i, o: _judge_cases(i, o, hidden_from=0)),
]
