"""What the test cells of the assignments import when they run in a notebook kernel.

``hidden_check`` runs a registered check right there, in the kernel, so that instructors and
``nbgrader validate`` see the same verdicts the grader gives. During autograding (the grader
sets ``LOSSLAB_AUTOGRADE=1``) it does nothing: the grade is decided outside the student's
kernel, by :mod:`losslab.grading.judge`, because code in that kernel can be subverted.
"""

from __future__ import annotations

from .checks import get_check
from .settings import autograding


def pick_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hidden_check(assignment: str, name: str, namespace: dict, seed: int = 0) -> None:
    """Run the check ``assignment.name`` against the functions in ``namespace``."""
    if autograding():
        return
    import importlib

    import torch

    from .checks import CheckFailed
    from .probes.probing import Probe
    from .probes.tracing import OpTracer, readable

    check = get_check(assignment, name)
    inputs = check.make_inputs(torch.Generator().manual_seed(seed))
    device = pick_device()
    probes = importlib.import_module(f"{__package__}.probes.{assignment}")
    # The same operator tracing as the grader's sandbox, so Validate and grading agree.
    tracer = OpTracer(frozenset(probes.FORBIDDEN_OPS))
    with tracer:
        outputs = check.probe(Probe(namespace, device), inputs)
    if tracer.seen:
        names = ", ".join(f"`{op}`" for op in readable(tracer.seen))
        raise CheckFailed(f"{check.title}: this exercise asks you not to use PyTorch's own "
                          f"implementation, but your code ran {names}.")
    outputs["__device__"] = device
    outputs["__forbidden__"] = []
    check.judge(inputs, outputs)
