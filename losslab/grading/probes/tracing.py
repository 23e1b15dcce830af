"""Record which PyTorch operators a call really executes (for the banned-function rules).

An assignment that asks students not to use PyTorch's own ``log_softmax`` cannot be enforced
by looking for names: ``torch._C._nn``, ``torch._C._VariableFunctions``, ``torch.ops.aten``,
``torch.special``, ``getattr(F, "log_" + "softmax")`` and Tensor methods all reach the same
ATen operator, while a student's own helper that happens to be called ``log_softmax`` is fine.
:class:`OpTracer` is a :class:`torch.utils._python_dispatch.TorchDispatchMode` (PyTorch's own
hook, below every Python spelling, above the kernels): every operator the dispatcher runs while
it is active passes through it, whatever route led there.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack


class OpTracer(TorchDispatchMode):
    """Remember the forbidden operators (``"aten::_log_softmax"``, ...) executed while active."""

    def __init__(self, forbidden: frozenset[str]) -> None:
        super().__init__()
        self.forbidden = frozenset(forbidden)
        self.seen: set[str] = set()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        name = func._schema.name
        if name in self.forbidden:
            self.seen.add(name)
        return func(*args, **(kwargs or {}))

    def still_active(self) -> bool:
        """Whether this tracer is still on the dispatch stack and still sees operators (code
        that pops PyTorch's mode stack would otherwise hide what it runs)."""
        if not any(mode is self for mode in _get_current_dispatch_mode_stack()):
            return False
        before = self.calls
        torch.zeros(1).add_(1)
        return self.calls > before


def readable(names) -> list[str]:
    """``aten::_log_softmax`` -> ``_log_softmax``, sorted, for messages."""
    return sorted({name.split("::", 1)[-1] for name in names})
