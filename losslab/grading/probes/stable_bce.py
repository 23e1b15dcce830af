"""Probes for stable_bce: call ``bce_with_logits`` on the grader's inputs."""

from __future__ import annotations

FUNCTION = "bce_with_logits"
# PyTorch's own implementations, as the dispatcher names them (see tracing.py).
FORBIDDEN_OPS = ("aten::binary_cross_entropy_with_logits", "aten::binary_cross_entropy",
                 "aten::softplus", "aten::log_sigmoid_forward", "aten::log_sigmoid")


def _call(p, case, logits):
    pos_weight = case["pos_weight"]
    return p.call_raw(FUNCTION, logits, p.tensor(case["target"]),
                      pos_weight=None if pos_weight is None else p.tensor(pos_weight),
                      reduction=case["reduction"])


def probe(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        pos_weight = case["pos_weight"]
        out[str(i)] = p.call(
            FUNCTION, p.tensor(case["logits"]), p.tensor(case["target"]),
            pos_weight=None if pos_weight is None else p.tensor(pos_weight),
            reduction=case["reduction"],
        )
    return out


def probe_extreme(p, inputs):
    out = probe(p, inputs)
    for i, case in enumerate(inputs["cases"]):
        leaf = p.tensor(case["logits"], requires_grad=True)
        value, error = _call(p, case, leaf)
        out[f"grad{i}"] = error or p.backward(value, leaf)
    return out


PROBES = {"basic": probe, "pos_weight": probe, "extreme_logits": probe_extreme}
