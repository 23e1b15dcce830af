"""Probes for focal_loss: call ``focal_loss`` on the grader's inputs, record what comes back."""

from __future__ import annotations

FUNCTION = "focal_loss"
FORBIDDEN_OPS: tuple[str, ...] = ()


def probe_cases(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        out[str(i)] = p.call(
            FUNCTION, p.tensor(case["logits"]), p.tensor(case["target"]),
            alpha=case["alpha"], gamma=case["gamma"], reduction=case["reduction"],
        )
    return out


def probe_extreme(p, inputs):
    out = probe_cases(p, inputs)
    for i, case in enumerate(inputs["cases"]):
        leaf = p.tensor(case["logits"], requires_grad=True)
        value, error = p.call_raw(FUNCTION, leaf, p.tensor(case["target"]), alpha=case["alpha"],
                                  gamma=case["gamma"], reduction=case["reduction"])
        out[f"grad{i}"] = error or p.backward(value, leaf)
    return out


PROBES = {
    "reference": probe_cases,
    "gamma_zero": probe_cases,
    "extreme_logits": probe_extreme,
    "device_dtype": probe_cases,
}
