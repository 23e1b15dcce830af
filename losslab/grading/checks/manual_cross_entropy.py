"""Checks for the manual_cross_entropy assignment."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..probes.manual_cross_entropy import PROBES
from . import Check, CheckFailed
from .expect import expect_close, tensor_result


def _logits(gen, shape, dtype, scale=3.0):
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)


def _targets(gen, n_classes, shape, ignore_index=None, share=0.0):
    target = torch.randint(0, n_classes, shape, generator=gen)
    if ignore_index is not None and share > 0:
        drop = torch.rand(shape, generator=gen) < share
        drop.view(-1)[0] = True
        drop.view(-1)[-1] = False
        target[drop] = ignore_index
    return target


def _describe_ls(case):
    logits = case["logits"]
    return f"log_softmax(logits of shape {tuple(logits.shape)}, {logits.dtype}, dim={case['dim']})"


def _describe_ce(case):
    logits = case["logits"]
    return (f"cross_entropy(logits of shape {tuple(logits.shape)}, {logits.dtype}, "
            f"ignore_index={case['ignore_index']}, reduction={case['reduction']!r})")


def _ref_ce(case):
    return F.cross_entropy(case["logits"].double(), case["target"],
                           ignore_index=case["ignore_index"],
                           reduction=case["reduction"]).to(case["logits"].dtype)


def _judge_ls(inputs, outputs, visible=1):
    for i, case in enumerate(inputs["ls"]):
        expected = F.log_softmax(case["logits"].double(), dim=case["dim"]).to(case["logits"].dtype)
        expect_close(outputs[str(i)], expected, _describe_ls(case),
                     device=outputs["__device__"], hidden=i >= visible)


def _judge_ce(inputs, outputs, visible=1):
    for i, case in enumerate(inputs["ce"]):
        expect_close(outputs[f"ce{i}"], _ref_ce(case), _describe_ce(case),
                     device=outputs["__device__"], hidden=i >= visible)


def _log_softmax_inputs(gen):
    cases = [{"logits": torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), "dim": -1}]
    cases.append({"logits": _logits(gen, (4, 7), torch.float32), "dim": -1})
    cases.append({"logits": _logits(gen, (3, 5, 6), torch.float64), "dim": 1})
    cases.append({"logits": _logits(gen, (2, 4, 3), torch.float32), "dim": 0})
    return {"ls": cases}


def _cross_entropy_inputs(gen):
    cases = [{"logits": torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]),
              "target": torch.tensor([0, 2]), "ignore_index": -100, "reduction": "mean"}]
    for dtype in (torch.float32, torch.float64):
        for reduction in ("none", "mean", "sum"):
            cases.append({"logits": _logits(gen, (9, 5), dtype),
                          "target": _targets(gen, 5, (9,)),
                          "ignore_index": -100, "reduction": reduction})
            cases.append({"logits": _logits(gen, (3, 4, 6), dtype),
                          "target": _targets(gen, 4, (3, 6)),
                          "ignore_index": -100, "reduction": reduction})
    return {"ce": cases}


def _ignore_inputs(gen):
    cases = [{"logits": torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]]),
              "target": torch.tensor([0, -100, 1]), "ignore_index": -100, "reduction": "mean"}]
    for reduction in ("mean", "sum", "none"):
        cases.append({"logits": _logits(gen, (12, 6), torch.float64),
                      "target": _targets(gen, 6, (12,), ignore_index=-100, share=0.3),
                      "ignore_index": -100, "reduction": reduction})
        # An ignore_index that is also a valid class: those positions must still be skipped.
        cases.append({"logits": _logits(gen, (4, 5, 7), torch.float32),
                      "target": _targets(gen, 5, (4, 7), ignore_index=3, share=0.3),
                      "ignore_index": 3, "reduction": reduction})
    return {"ce": cases}


def _stable_inputs(gen):
    big = torch.tensor([[1e4, 0.0, -1e4], [1e4, 1e4 - 1.0, 1e4 - 2.0]])
    ls = [{"logits": big, "dim": -1},
          {"logits": _logits(gen, (5, 8), torch.float32, scale=1e4), "dim": -1}]
    ce = [{"logits": big, "target": torch.tensor([2, 0]), "ignore_index": -100,
           "reduction": "mean"},
          {"logits": _logits(gen, (6, 8), torch.float32, scale=1e4),
           "target": _targets(gen, 8, (6,)), "ignore_index": -100, "reduction": "sum"}]
    return {"ls": ls, "ce": ce}


def _judge_stable(inputs, outputs):
    _judge_ls(inputs, outputs, visible=1)
    _judge_ce(inputs, outputs, visible=1)
    case = inputs["ce"][1]
    leaf = case["logits"].double().clone().requires_grad_(True)
    F.cross_entropy(leaf, case["target"], reduction="sum").backward()
    what = f"gradient of {_describe_ce(case)}"
    grad = tensor_result(outputs["grad"], what, device=outputs["__device__"],
                         dtype=torch.float32)
    if not bool(torch.isfinite(grad).all()):
        raise CheckFailed(f"{what}: the gradient contains inf or nan")
    expect_close(outputs["grad"], leaf.grad.float(), what, device=outputs["__device__"],
                 hidden=True)


CHECKS = [
    Check("manual_cross_entropy", "log_softmax", "log_softmax matches PyTorch",
          _log_softmax_inputs, PROBES["log_softmax"], _judge_ls),
    Check("manual_cross_entropy", "cross_entropy", "cross_entropy matches PyTorch",
          _cross_entropy_inputs, PROBES["cross_entropy"], _judge_ce),
    Check("manual_cross_entropy", "ignore_index", "cross_entropy skips ignore_index",
          _ignore_inputs, PROBES["ignore_index"], _judge_ce),
    Check("manual_cross_entropy", "stable", "stable at logits of 1e4 in float32",
          _stable_inputs, PROBES["stable"], _judge_stable),
]
