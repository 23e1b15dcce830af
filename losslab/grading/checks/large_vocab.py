"""Checks for the large_vocab assignment."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..probes.large_vocab import PROBES
from . import Check, CheckFailed
from .expect import expect_close, expect_finite_gradient

FUNCTION = "linear_cross_entropy"
# The memory case: the full logits would be N x V float32 = 32 MiB.
MEMORY_SHAPE = (512, 16, 16384)
MEMORY_CHUNK = 64


def reference(hidden, weight, target, ignore_index=-100):
    """The plain form, in float64: all the logits, then cross-entropy."""
    logits = hidden.double() @ weight.double().T
    return F.cross_entropy(logits, target, ignore_index=ignore_index).to(hidden.dtype)


def logits_bytes(case) -> int:
    n = case["hidden"].shape[0]
    vocab = case["weight"].shape[0]
    return n * vocab * case["hidden"].element_size()


def memory_bound(case) -> int:
    """Half of one full logits tensor: the plain form needs three of them at its peak."""
    return logits_bytes(case) // 2


def _case(gen, n, dim, vocab, dtype, chunk_size, ignore_index=-100, ignored=0.0):
    hidden = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    weight = torch.randn(vocab, dim, generator=gen, dtype=torch.float64) / dim ** 0.5
    target = torch.randint(0, vocab, (n,), generator=gen)
    if ignored > 0:
        drop = torch.rand(n, generator=gen) < ignored
        drop[-1] = False
        target[drop] = ignore_index
    return {"hidden": hidden.to(dtype), "weight": weight.to(dtype), "target": target,
            "chunk_size": chunk_size, "ignore_index": ignore_index}


def _describe(case):
    hidden, weight = case["hidden"], case["weight"]
    ignored = int((case["target"] == case["ignore_index"]).sum())
    return (f"{FUNCTION}(hidden {tuple(hidden.shape)}, weight {tuple(weight.shape)}, "
            f"{hidden.dtype}, chunk_size={case['chunk_size']}, {ignored} targets ignored)")


def _visible_case():
    hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5], [0.5, 0.5]])
    return {"hidden": hidden, "weight": weight, "target": torch.tensor([0, 3, 2]),
            "chunk_size": 2, "ignore_index": -100}


def _value_inputs(gen):
    cases = [_visible_case()]
    for n, dim, vocab, dtype, chunk in ((37, 8, 50, torch.float32, 8),
                                        (64, 16, 300, torch.float64, 16),
                                        (10, 4, 20, torch.float32, 64),
                                        (25, 5, 40, torch.float64, 1)):
        cases.append(_case(gen, n, dim, vocab, dtype, chunk))
    # Ignored targets, unevenly spread over the chunks; an ignore_index that is a real class.
    cases.append(_case(gen, 45, 6, 30, torch.float32, 8, ignored=0.4))
    case = _case(gen, 30, 6, 30, torch.float64, 7, ignore_index=3, ignored=0.3)
    cases.append(case)
    # A whole chunk of ignored targets.
    case = _case(gen, 24, 4, 16, torch.float32, 8)
    case["target"][8:16] = -100
    cases.append(case)
    return {"cases": cases}


def _judge_value(inputs, outputs):
    for i, case in enumerate(inputs["cases"]):
        expected = reference(case["hidden"], case["weight"], case["target"], case["ignore_index"])
        expect_close(outputs[str(i)], expected, _describe(case), device=outputs["__device__"],
                     hidden=i > 0)


def _gradient_inputs(gen):
    cases = [_case(gen, 29, 8, 60, torch.float64, 8, ignored=0.3),
             _case(gen, 40, 12, 200, torch.float32, 16),
             _case(gen, 17, 5, 33, torch.float64, 5, ignore_index=0, ignored=0.2)]
    return {"cases": cases}


def _judge_gradient(inputs, outputs, *, value_hidden=True):
    device = outputs["__device__"]
    for i, case in enumerate(inputs["cases"]):
        what = _describe(case)
        hidden = case["hidden"].double().clone().requires_grad_(True)
        weight = case["weight"].double().clone().requires_grad_(True)
        expected = reference(hidden, weight, case["target"], case["ignore_index"])
        expected.backward()
        dtype = case["hidden"].dtype
        expect_close(outputs[str(i)], expected.detach().to(dtype), what, device=device,
                     hidden=value_hidden)
        for name, leaf in (("hidden", hidden), ("weight", weight)):
            expect_finite_gradient(outputs[f"grad_{name}{i}"], leaf.grad,
                                   f"gradient in {name} of {what}", device=device, dtype=dtype)


def _memory_inputs(gen):
    n, dim, vocab = MEMORY_SHAPE
    return {"cases": [_case(gen, n, dim, vocab, torch.float32, MEMORY_CHUNK, ignored=0.1)]}


def _judge_memory(inputs, outputs):
    for i, case in enumerate(inputs["cases"]):
        what = _describe(case)
        record = outputs[f"memory{i}"]
        if not isinstance(record, dict) or "error" in record:
            detail = record.get("error") if isinstance(record, dict) else "no record"
            raise CheckFailed(f"{what}: the peak memory could not be measured ({detail})")
        peak, allocated = record.get("peak"), record.get("allocated")
        if type(peak) is not int or type(allocated) is not int:
            raise CheckFailed(f"{what}: the peak memory could not be measured")
        # Forward and backward must at least allocate both gradients; a measurement that saw
        # less did not see the computation.
        grads = case["hidden"].numel() * 4 + case["weight"].numel() * 4
        if allocated < grads:
            raise CheckFailed(f"{what}: the peak memory could not be measured (the measurement "
                              "saw less memory than the gradients alone need)")
        full = logits_bytes(case)
        if peak > memory_bound(case):
            raise CheckFailed(
                f"{what}: forward and backward peaked at {peak / 2**20:.1f} MiB beyond the "
                f"inputs; the bound is {memory_bound(case) / 2**20:.1f} MiB, half of the "
                f"{full / 2**20:.1f} MiB the full logits would take. Never hold all the logits "
                "(or their softmax, or their gradient) at once.")
    _judge_gradient(inputs, outputs)


CHECKS = [
    Check("large_vocab", "value", "linear_cross_entropy matches the plain form",
          _value_inputs, PROBES["value"], _judge_value),
    Check("large_vocab", "gradient", "gradients in hidden and weight match the plain form",
          _gradient_inputs, PROBES["gradient"], _judge_gradient),
    Check("large_vocab", "memory", "peak memory stays below half of the full logits",
          _memory_inputs, PROBES["memory"], _judge_memory),
]
