"""Probes for manual_cross_entropy: call ``log_softmax`` and ``cross_entropy``."""

from __future__ import annotations

# PyTorch's own implementations, as the dispatcher names them; every spelling (F., torch.,
# Tensor methods, torch._C._nn, torch.ops.aten, torch.special, nn modules) ends in one of these.
FORBIDDEN_OPS = ("aten::_log_softmax", "aten::log_softmax", "aten::_softmax", "aten::softmax",
                 "aten::_safe_softmax", "aten::logsumexp", "aten::cross_entropy_loss",
                 "aten::nll_loss", "aten::nll_loss_nd", "aten::nll_loss_forward",
                 "aten::nll_loss2d", "aten::nll_loss2d_forward")


def probe_ls(p, inputs):
    return {str(i): p.call("log_softmax", p.tensor(case["logits"]), dim=case["dim"])
            for i, case in enumerate(inputs["ls"])}


def probe_ce(p, inputs):
    return {
        f"ce{i}": p.call("cross_entropy", p.tensor(case["logits"]), p.tensor(case["target"]),
                         ignore_index=case["ignore_index"], reduction=case["reduction"])
        for i, case in enumerate(inputs["ce"])
    }


def probe_stable(p, inputs):
    out = probe_ls(p, inputs)
    out.update(probe_ce(p, inputs))
    case = inputs["ce"][1]
    leaf = p.tensor(case["logits"], requires_grad=True)
    value, error = p.call_raw("cross_entropy", leaf, p.tensor(case["target"]),
                              ignore_index=-100, reduction="sum")
    out["grad"] = error or p.backward(value, leaf)
    return out


PROBES = {"log_softmax": probe_ls, "cross_entropy": probe_ce, "ignore_index": probe_ce,
          "stable": probe_stable}
