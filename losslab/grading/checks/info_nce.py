"""Checks for the info_nce assignment."""

from __future__ import annotations

import torch

from ..probes.info_nce import PROBES
from . import Check
from .expect import expect_close, expect_finite_gradient

FUNCTION = "info_nce"


def reference(a, b, temperature):
    """Symmetric InfoNCE, in float64 and written out in full (no cross_entropy): cosine
    similarities over the temperature; row i's positive is column i, in both directions."""
    a64 = a.double() / a.double().norm(dim=1, keepdim=True)
    b64 = b.double() / b.double().norm(dim=1, keepdim=True)
    logits = a64 @ b64.T / temperature
    positives = logits.diagonal()
    a_to_b = torch.logsumexp(logits, dim=1) - positives
    b_to_a = torch.logsumexp(logits, dim=0) - positives
    return (0.5 * (a_to_b.mean() + b_to_a.mean())).to(a.dtype)


def _describe(case):
    a = case["a"]
    return (f"{FUNCTION}(a, b of shape {tuple(a.shape)}, {a.dtype}, "
            f"temperature={case['temperature']:g})")


def _pair(gen, n, d, dtype, noise=0.5, scale=1.0):
    a = torch.randn(n, d, generator=gen, dtype=torch.float64) * scale
    # The second view of each item: the first plus noise, and a different length (the loss
    # must normalise).
    b = (a + noise * torch.randn(n, d, generator=gen, dtype=torch.float64)) * (
        0.5 + 2 * torch.rand(n, 1, generator=gen, dtype=torch.float64))
    return a.to(dtype), b.to(dtype)


def _visible_case():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.5], [0.0, 1.0], [-1.0, 1.0]])
    return {"a": a, "b": b, "temperature": 0.5}


def _judge(inputs, outputs, visible=1):
    for i, case in enumerate(inputs["cases"]):
        expected = reference(case["a"], case["b"], case["temperature"])
        expect_close(outputs[str(i)], expected, _describe(case), device=outputs["__device__"],
                     hidden=i >= visible)


def _judge_gradients(inputs, outputs, visible=0):
    _judge(inputs, outputs, visible=visible)
    for i, case in enumerate(inputs["cases"]):
        a = case["a"].double().clone().requires_grad_(True)
        b = case["b"].double().clone().requires_grad_(True)
        reference(a, b, case["temperature"]).backward()
        for name, leaf in (("a", a), ("b", b)):
            expect_finite_gradient(outputs[f"grad_{name}{i}"], leaf.grad,
                                   f"gradient in {name} of {_describe(case)}",
                                   device=outputs["__device__"], dtype=case["a"].dtype)


def _reference_inputs(gen):
    cases = [_visible_case()]
    for n, d in ((8, 4), (16, 32), (5, 3)):
        for dtype in (torch.float32, torch.float64):
            temperature = float(torch.rand((), generator=gen)) * 0.9 + 0.05
            a, b = _pair(gen, n, d, dtype)
            cases.append({"a": a, "b": b, "temperature": temperature})
    # A batch whose two directions differ most: each b row near a different a row's scale.
    a, b = _pair(gen, 6, 4, torch.float64, noise=2.0)
    cases.append({"a": a, "b": b, "temperature": 0.2})
    return {"cases": cases}


def _edge_inputs(gen):
    # Visible: the same pair twice in one batch.
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.1], [1.0, 0.1], [0.1, 1.0]])
    cases = [{"a": a, "b": b, "temperature": 0.1}]
    # Duplicated rows in a random batch, on one side and on both.
    a, b = _pair(gen, 8, 6, torch.float32)
    a[3] = a[1]
    b[3] = b[1]
    a[5] = a[0]
    cases.append({"a": a, "b": b, "temperature": 0.1})
    # Temperature extremes: sharp (logits up to 100) and flat (loss near log N).
    for temperature, dtype in ((0.01, torch.float32), (0.01, torch.float64),
                               (100.0, torch.float32)):
        a, b = _pair(gen, 10, 8, dtype, noise=0.3)
        cases.append({"a": a, "b": b, "temperature": temperature})
    # Large and tiny embedding lengths: the similarity is a cosine whatever the scale.
    a, b = _pair(gen, 6, 5, torch.float32, scale=1e3)
    cases.append({"a": a, "b": b, "temperature": 0.05})
    a, b = _pair(gen, 6, 5, torch.float32, scale=1e-3)
    cases.append({"a": a, "b": b, "temperature": 0.05})
    # One pair: a single positive and no negatives, loss 0.
    a, b = _pair(gen, 1, 4, torch.float64)
    cases.append({"a": a, "b": b, "temperature": 0.1})
    return {"cases": cases}


def _gradient_inputs(gen):
    cases = []
    for n, d, dtype in ((7, 5, torch.float64), (12, 16, torch.float32)):
        a, b = _pair(gen, n, d, dtype)
        cases.append({"a": a, "b": b, "temperature": 0.1 + 0.4 * float(torch.rand(
            (), generator=gen))})
    return {"cases": cases}


def _placement_inputs(gen):
    cases = []
    for dtype in (torch.float64, torch.float32):
        a, b = _pair(gen, 4, 3, dtype)
        cases.append({"a": a, "b": b, "temperature": 0.1})
    return {"cases": cases}


CHECKS = [
    Check("info_nce", "reference", "info_nce matches the symmetric InfoNCE reference",
          _reference_inputs, PROBES["reference"], _judge),
    Check("info_nce", "edge_cases", "duplicates, one pair, lengths and temperature extremes",
          _edge_inputs, PROBES["edge_cases"], lambda i, o: _judge_gradients(i, o, visible=1)),
    Check("info_nce", "gradient", "gradients reach both batches and match the reference",
          _gradient_inputs, PROBES["gradient"], _judge_gradients),
    Check("info_nce", "device_dtype", "the loss keeps the inputs' device and dtype",
          _placement_inputs, PROBES["device_dtype"], lambda i, o: _judge(i, o, visible=0)),
]
