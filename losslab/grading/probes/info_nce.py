"""Probes for info_nce: call ``info_nce`` on the grader's embeddings, record what comes back."""

from __future__ import annotations

FUNCTION = "info_nce"
FORBIDDEN_OPS: tuple[str, ...] = ()


def probe_cases(p, inputs):
    return {str(i): p.call(FUNCTION, p.tensor(case["a"]), p.tensor(case["b"]),
                           temperature=case["temperature"])
            for i, case in enumerate(inputs["cases"])}


def probe_gradient(p, inputs):
    out = probe_cases(p, inputs)
    for i, case in enumerate(inputs["cases"]):
        a = p.tensor(case["a"], requires_grad=True)
        b = p.tensor(case["b"], requires_grad=True)
        value, error = p.call_raw(FUNCTION, a, b, temperature=case["temperature"])
        out[f"grad_a{i}"] = error or p.backward(value, a)
        out[f"grad_b{i}"] = error or (p.pack(b.grad) if b.grad is not None
                                      else {"error": "no gradient reached the second batch"})
    return out


PROBES = {
    "reference": probe_cases,
    "edge_cases": probe_gradient,
    "gradient": probe_gradient,
    "device_dtype": probe_cases,
}
