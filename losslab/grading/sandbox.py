"""The sandbox process: run a student's notebook code, then probe it, never judging.

Started by :mod:`losslab.grading.isolate` as ``python -m losslab.grading.sandbox JOB_DIR``
with resource limits already applied. Everything it needs (check inputs included) is loaded
*before* the student's code runs; between student calls it puts back every attribute of
torch, numpy, math and builtins the student's code replaced.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import sys
from pathlib import Path

_MISSING = object()


class Snapshot:
    """Remember the attributes of some modules and classes, and put them back on demand."""

    def __init__(self, targets: list) -> None:
        self._saved = [(target, dict(vars(target))) for target in targets]
        self._modules = dict(sys.modules)

    def restore(self) -> None:
        for name, module in self._modules.items():
            if sys.modules.get(name, _MISSING) is not module:
                sys.modules[name] = module
        for target, saved in self._saved:
            current = vars(target)
            for key in [key for key in current if key not in saved]:
                try:
                    delattr(target, key)
                except (AttributeError, TypeError):
                    pass
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    try:
                        setattr(target, key, value)
                    except (AttributeError, TypeError):
                        pass


class _Shell:
    """Stands in for IPython's shell: magics and display calls do nothing here."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class ForbiddenCall(Exception):
    """Raised by a tripwire: the assignment asks not to use this function."""


def _tripwire(label: str, called: list):
    def tripwire(*args, **kwargs):
        called.append(label)
        raise ForbiddenCall(f"{label} is not allowed in this exercise")

    return tripwire


def _install_tripwires(names: set[str], called: list) -> None:
    import torch
    import torch.nn.functional as F

    for owner, label in ((torch, "torch"), (F, "torch.nn.functional"), (torch.Tensor, "Tensor")):
        for name in names:
            if hasattr(owner, name):
                setattr(owner, name, _tripwire(f"{label}.{name}", called))
    if "cross_entropy" in names or "nll_loss" in names:
        for cls in ("CrossEntropyLoss", "NLLLoss"):
            setattr(torch.nn, cls, _tripwire(f"torch.nn.{cls}", called))
    if "binary_cross_entropy_with_logits" in names:
        for cls in ("BCEWithLogitsLoss", "BCELoss"):
            setattr(torch.nn, cls, _tripwire(f"torch.nn.{cls}", called))


def _compile_cell(source: str, index: int):
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - keep the source as it is
        pass
    return compile(source, f"<cell {index}>", "exec")


def main(job_dir: str) -> int:
    job_path = Path(job_dir)
    job = json.loads((job_path / "job.json").read_text())
    results = job_path / "results"
    start = int(job["start"])

    import numpy
    import torch
    import torch.nn.functional as F

    from . import probing
    from .checks import checks_for

    torch.set_num_threads(1)
    inputs = torch.load(job_path / "inputs.pt", weights_only=True)
    device = job["device"]
    if device == "cuda":
        torch.zeros(1, device="cuda")
    checks = checks_for(job["assignment"])

    called: list[str] = []
    forbidden = {name for check in checks.values() for name in check.forbidden}
    _install_tripwires(forbidden, called)
    targets = [builtins, math, numpy, torch, F, torch.Tensor, torch.nn, torch.special,
               torch.linalg, torch.autograd, os, sys, json, probing]
    snapshot = Snapshot(targets)
    save = torch.save
    replace = os.replace
    write_marker = Path.write_text
    probe = probing.Probe({}, device, restore=snapshot.restore)

    # Student prints and fake success messages go nowhere: verdicts come from files.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)

    shell = _Shell()
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins,
                       "get_ipython": lambda: shell}
    probe.namespace = namespace
    for position, item in enumerate(job["cells"]):
        if item["kind"] == "code":
            write_marker(results / f"cell-{position}", "")
            try:
                code = _compile_cell(item["source"], position)
                exec(code, namespace)  # noqa: S102 - this is the sandbox
            except BaseException:  # noqa: BLE001 - as a kernel would, go on with the next cell
                pass
            snapshot.restore()
            continue
        if position < start:
            continue
        write_marker(results / f"check-{position}", "")
        verdicts = {}
        for key in item["checks"]:
            check = checks[key.split(".", 1)[1]]
            before = len(called)
            try:
                outputs = check.probe(probe, inputs[key])
            except BaseException as error:  # noqa: BLE001
                snapshot.restore()
                outputs = {"__crash__": probing._describe_exception(error)}
            snapshot.restore()
            outputs["__device__"] = device
            outputs["__forbidden__"] = sorted(set(called[before:]))
            verdicts[key] = outputs
        save(verdicts, results / f"result-{position}.tmp")
        replace(results / f"result-{position}.tmp", results / f"result-{position}.pt")
    write_marker(results / "finished", "")
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush()
    os._exit(code)
