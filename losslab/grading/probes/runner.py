"""The sandbox's main program: run a student's notebook code, then the probes; never judge.

Started by :mod:`losslab.grading.judge` inside bubblewrap as
``python -m losslab_probes.runner JOB_DIR FD``. ``JOB_DIR`` (read-only) holds ``job.json``
(the notebook's code cells and which probes each test cell needs) and ``inputs.pt`` (the
inputs the grader drew). ``FD`` is the write end of a pipe that only the grader reads: the one
way out of the sandbox. Each message is a frame, an 8-byte big-endian length then a
``torch.save`` payload: ``{"step": i}`` when cell ``i`` starts, ``{"result": i, "verdicts":
...}`` with the probes' records for test cell ``i``, ``{"finished": True}`` at the end.

Student code runs in this same process, so it could write frames too; the grader reads them
strictly (size cap, schema, steps only forward, its own deadlines), so a forged frame can only
change this one submission's own records, which the grader then judges against references the
sandbox never saw. Student prints go to ``/dev/null``: the feedback shows the outputs of the
notebook's own kernel, not of this process.
"""

from __future__ import annotations

import builtins
import importlib
import io
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


class Channel:
    """Frames to the grader over an inherited pipe."""

    def __init__(self, fd: int, save) -> None:
        self._fd = fd
        self._save = save
        self._write = os.write

    def send(self, message: dict) -> None:
        buffer = io.BytesIO()
        self._save(message, buffer)
        data = buffer.getvalue()
        view = memoryview(len(data).to_bytes(8, "big") + data)
        while view:
            view = view[self._write(self._fd, view):]


def _compile_cell(source: str, index: int):
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - keep the source as it is
        pass
    return compile(source, f"<cell {index}>", "exec")


def main(job_dir: str, fd: int) -> int:
    job_path = Path(job_dir)
    job = json.loads((job_path / "job.json").read_text())
    start = int(job["start"])

    import numpy
    import torch
    import torch.nn.functional as F

    from . import probing, tracing

    probes = importlib.import_module(f"{__package__}.{job['assignment']}")
    torch.set_num_threads(1)
    inputs = torch.load(job_path / "inputs.pt", weights_only=True)
    device = job["device"]
    if device == "cuda":
        torch.zeros(1, device="cuda")
    channel = Channel(fd, torch.save)
    forbidden = frozenset(probes.FORBIDDEN_OPS)
    targets = [builtins, math, numpy, torch, F, torch.Tensor, torch.nn, torch.special,
               torch.linalg, torch.autograd, os, sys, json, io, probing, tracing, probes]
    snapshot = Snapshot(targets)
    probe = probing.Probe({}, device, restore=snapshot.restore)

    # Student prints go nowhere: what counts comes through the channel.
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)

    shell = _Shell()
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins,
                       "get_ipython": lambda: shell}
    probe.namespace = namespace
    for position, item in enumerate(job["cells"]):
        if item["kind"] == "code":
            channel.send({"step": position})
            try:
                code = _compile_cell(item["source"], position)
                exec(code, namespace)  # noqa: S102 - this is the sandbox
            except BaseException:  # noqa: BLE001 - as a kernel would, go on with the next cell
                pass
            snapshot.restore()
            continue
        if position < start:
            continue
        channel.send({"step": position})
        verdicts = {}
        for key in item["checks"]:
            run = probes.PROBES[key.split(".", 1)[1]]
            tracer = tracing.OpTracer(forbidden) if forbidden else None
            intact = True
            try:
                if tracer is None:
                    outputs = run(probe, inputs[key])
                else:
                    with tracer:
                        outputs = run(probe, inputs[key])
                        intact = tracer.still_active()
            except BaseException as error:  # noqa: BLE001
                snapshot.restore()
                outputs = {"__crash__": probing._describe_exception(error)}
            snapshot.restore()
            seen = tracing.readable(tracer.seen) if tracer is not None else []
            if not intact:
                seen.append("code that switches off the grader's operator tracing")
            outputs["__forbidden__"] = seen
            verdicts[key] = outputs
        channel.send({"result": position, "verdicts": verdicts})
    channel.send({"finished": True})
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1], int(sys.argv[2]))
    os._exit(code)
