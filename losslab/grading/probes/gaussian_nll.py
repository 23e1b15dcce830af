"""Probes for gaussian_nll: call ``gaussian_nll`` and ``fit_variance_model``.

``F.gaussian_nll_loss`` is written in Python, so no ATen operator of its own reaches the
dispatcher. Its calls are recorded one level higher, with a ``TorchFunctionMode``: PyTorch
hands every call of a ``torch.nn.functional`` function (whatever name or module the student
reached it through, ``nn.GaussianNLLLoss`` included) to the active mode before it runs.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode, _get_current_function_mode_stack

FORBIDDEN_OPS: tuple[str, ...] = ()
# Python-level functions the answer may not call, by their qualified names.
FORBIDDEN_FUNCTIONS = ("torch.nn.functional.gaussian_nll_loss",)
_BANNED = {torch.nn.functional.gaussian_nll_loss: FORBIDDEN_FUNCTIONS[0]}


class FunctionBan(TorchFunctionMode):
    """Remember which forbidden functions ran while active; let everything run as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        name = _BANNED.get(func)
        if name is not None:
            self.seen.add(name)
        return func(*args, **(kwargs or {}))

    def still_active(self) -> bool:
        if not any(mode is self for mode in _get_current_function_mode_stack()):
            return False
        before = self.calls
        torch.add(torch.zeros(1), 1)
        return self.calls > before


def _banned(run):
    """Run a probe under :class:`FunctionBan`; add what it saw as ``banned``."""

    def wrapped(p, inputs):
        ban = FunctionBan()
        ban.__enter__()
        intact = False
        try:
            out = run(p, inputs)
        finally:
            intact = ban.still_active()
            if intact:
                ban.__exit__(None, None, None)
        seen = sorted(ban.seen)
        if not intact:
            seen.append("code that switches off the grader's function tracing")
        out["banned"] = seen
        return out

    return wrapped


def probe_loss(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        out[str(i)] = p.call("gaussian_nll", p.tensor(case["mean"]), p.tensor(case["target"]),
                             p.tensor(case["log_var"]), full=case["full"],
                             reduction=case["reduction"])
    return out


def probe_extreme(p, inputs):
    out = probe_loss(p, inputs)
    for i, case in enumerate(inputs["cases"]):
        mean = p.tensor(case["mean"], requires_grad=True)
        log_var = p.tensor(case["log_var"], requires_grad=True)
        value, error = p.call_raw("gaussian_nll", mean, p.tensor(case["target"]), log_var,
                                  full=case["full"], reduction=case["reduction"])
        out[f"grad_mean{i}"] = error or p.backward(value, mean)
        out[f"grad_log_var{i}"] = error or (p.pack(log_var.grad) if log_var.grad is not None
                                            else {"error": "no gradient reached log_var"})
    return out


def probe_fit(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        model, error = p.call_raw("fit_variance_model", p.tensor(case["x"]),
                                  p.tensor(case["y"]))
        if error:
            out[str(i)] = error
            continue
        with torch.no_grad():
            out[str(i)] = p.invoke("the model `fit_variance_model` returned", model,
                                   p.tensor(case["grid"]))
    return out


def _warm_up() -> None:
    """Pay once, when the sandbox starts, for what PyTorch imports lazily the first time an
    optimiser is built (about a second of CPU): a check's time limit then counts only the
    student's training."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=0.1)
    param.sum().backward()
    optimizer.step()


# Only in the grader's sandbox, where this package is bound as ``losslab_probes``: Validate
# has no such limit, and the grader's own process never probes.
if __package__ == "losslab_probes":
    _warm_up()

PROBES = {
    "reference": _banned(probe_loss),
    "extreme": _banned(probe_extreme),
    "fit": _banned(probe_fit),
}
