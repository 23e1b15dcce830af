"""Checks for the stable_bce assignment."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..probes.stable_bce import PROBES
from . import Check
from .expect import expect_close, expect_finite_gradient

FUNCTION = "bce_with_logits"


def reference(case):
    logits = case["logits"].double()
    pos_weight = case["pos_weight"]
    pos_weight = None if pos_weight is None else pos_weight.double()
    return F.binary_cross_entropy_with_logits(
        logits, case["target"].double(), pos_weight=pos_weight, reduction=case["reduction"]
    ).to(case["logits"].dtype)


def _case(gen, shape, dtype, reduction, scale=2.0, pos_weight=None):
    logits = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)
    target = (torch.rand(shape, generator=gen, dtype=torch.float64) < 0.4).to(dtype)
    return {"logits": logits, "target": target, "pos_weight": pos_weight, "reduction": reduction}


def _describe(case):
    logits = case["logits"]
    pos_weight = case["pos_weight"]
    weight = "None" if pos_weight is None else f"tensor of shape {tuple(pos_weight.shape)}"
    return (f"{FUNCTION}(logits of shape {tuple(logits.shape)}, {logits.dtype}, "
            f"pos_weight={weight}, reduction={case['reduction']!r})")


def _judge(inputs, outputs):
    visible = inputs.get("visible", 1)
    for i, case in enumerate(inputs["cases"]):
        expect_close(outputs[str(i)], reference(case), _describe(case),
                     device=outputs["__device__"], hidden=i >= visible)


def _basic_inputs(gen):
    cases = [{"logits": torch.tensor([2.0, -1.0, 0.0]), "target": torch.tensor([1.0, 0.0, 1.0]),
              "pos_weight": None, "reduction": "mean"}]
    for dtype in (torch.float32, torch.float64):
        for reduction in ("none", "mean", "sum"):
            cases.append(_case(gen, (20,), dtype, reduction))
            cases.append(_case(gen, (6, 4), dtype, reduction))
    return {"cases": cases}


def _pos_weight_inputs(gen):
    cases = [{"logits": torch.tensor([2.0, -1.0, 0.0]), "target": torch.tensor([1.0, 0.0, 1.0]),
              "pos_weight": torch.tensor([3.0]), "reduction": "mean"}]
    for dtype in (torch.float32, torch.float64):
        for reduction in ("none", "sum"):
            weight = (torch.rand(5, generator=gen, dtype=torch.float64) * 4 + 0.2).to(dtype)
            cases.append(_case(gen, (7, 5), dtype, reduction, pos_weight=weight))
        weight = (torch.rand(1, generator=gen, dtype=torch.float64) * 4 + 0.2).to(dtype)
        cases.append(_case(gen, (9,), dtype, "mean", pos_weight=weight))
    return {"cases": cases}


def _extreme_inputs(gen):
    cases = [{"logits": torch.tensor([100.0, -100.0, 100.0, -100.0]),
              "target": torch.tensor([1.0, 0.0, 0.0, 1.0]), "pos_weight": None,
              "reduction": "none"}]
    case = _case(gen, (8, 3), torch.float32, "sum")
    case["logits"] = case["logits"].sign() * 1e4
    cases.append(case)
    cases.append(_case(gen, (10,), torch.float64, "none", scale=300.0,
                       pos_weight=torch.tensor([2.5], dtype=torch.float64)))
    return {"cases": cases}


def _judge_extreme(inputs, outputs):
    _judge(inputs, outputs)
    for i, case in enumerate(inputs["cases"]):
        leaf = case["logits"].double().clone().requires_grad_(True)
        reference({**case, "logits": leaf}).sum().backward()
        expect_finite_gradient(outputs[f"grad{i}"], leaf.grad, f"gradient of {_describe(case)}",
                               device=outputs["__device__"], dtype=case["logits"].dtype)


CHECKS = [
    Check("stable_bce", "basic", "bce_with_logits matches PyTorch", _basic_inputs,
          PROBES["basic"], _judge),
    Check("stable_bce", "pos_weight", "pos_weight weighs the positive term", _pos_weight_inputs,
          PROBES["pos_weight"], _judge),
    Check("stable_bce", "extreme_logits", "no inf or nan at extreme logits, finite gradients",
          _extreme_inputs, PROBES["extreme_logits"], _judge_extreme),
]
