"""Decide graded test cells outside the student's kernel.

The student's code runs in a sandbox (:mod:`losslab.grading.probes.runner`, inside bubblewrap:
see :mod:`losslab.grading.sandbox`) that only records what the student's functions return.
The references are computed and compared here, in a process the student's code never ran in,
from records that come back over a pipe this process alone reads, under its own deadlines.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Integer, Unicode, default

from . import processes, sandbox
from .cells import VERDICT_ENAME, checks_named, is_test_cell
from .checks import ASSIGNMENTS, CheckFailed, checks_for
from .probes.tracing import readable
from .processes import beat
from .settings import (
    EXIT_GRACE_SECONDS,
    MAX_RECORD_ELEMENTS,
    MAX_RECORD_NODES,
    MAX_RESULT_BYTES,
    MAX_VALIDATION_SECONDS,
    STUDENT_SLACK_SECONDS,
    Limits,
    grading_seed,
)

PROBES_DIR = Path(__file__).resolve().parent / "probes"
PROBE_COMMON = ("__init__.py", "probing.py", "tracing.py", "runner.py")


@dataclass
class Verdict:
    """The decision on one graded test cell."""

    passed: bool
    messages: list[str] = field(default_factory=list)


class ChannelError(Exception):
    """What came over the result pipe is not what the runner sends."""


class FrameReader:
    """Length-prefixed frames from a pipe, with a cap on everything read."""

    def __init__(self, cap: int = MAX_RESULT_BYTES) -> None:
        self.cap = cap
        self.total = 0
        self.buffer = bytearray()
        self.closed = False

    def feed(self, chunk: bytes) -> tuple[list[dict], ChannelError | None]:
        """The frames completed by ``chunk`` (the next read; empty at the pipe's end), and the
        error that ended reading, if any (frames before a malformed one still count)."""
        if not chunk:
            self.closed = True
            return [], None
        self.total += len(chunk)
        if self.total > self.cap:
            return [], ChannelError(f"it sent more than {self.cap >> 20} MiB of results")
        self.buffer += chunk
        messages = []
        while len(self.buffer) >= 8:
            size = int.from_bytes(self.buffer[:8], "big")
            if size > self.cap:
                return messages, ChannelError("it sent a malformed result")
            if len(self.buffer) < 8 + size:
                break
            payload = bytes(self.buffer[8:8 + size])
            del self.buffer[:8 + size]
            try:
                message = torch.load(io.BytesIO(payload), weights_only=True)
            except Exception:  # noqa: BLE001 - whatever the sandbox wrote
                return messages, ChannelError("it sent a result that could not be read")
            if not isinstance(message, dict) or len(message) not in (1, 2):
                return messages, ChannelError("it sent a malformed result")
            messages.append(message)
        return messages, None


def _launch(job_dir: Path, assignment: str, fd: int, limits: Limits):
    """The sandbox's command line, environment and descriptors."""
    if sandbox.mode() == sandbox.UNSAFE:
        argv = [sys.executable, "-m", "losslab.grading.probes.runner", str(job_dir), str(fd)]
        return sandbox.Launch(argv), processes.unsafe_student_env()
    binds = [(str(PROBES_DIR / name), f"{sandbox.PROBES}/{name}") for name in PROBE_COMMON]
    binds.append((str(PROBES_DIR / f"{assignment}.py"), f"{sandbox.PROBES}/{assignment}.py"))
    binds.append((str(job_dir), "/job"))
    launch = sandbox.command([sys.executable, "-m", "losslab_probes.runner", "/job", str(fd)],
                             ro_binds=binds, limits=limits)
    return launch, processes.bwrap_env()


def _run_sandbox(job_dir: Path, assignment: str, cells: list[dict], start: int,
                 limits: Limits) -> tuple[str, int | None, int | None, dict[int, dict], str]:
    """Run one sandbox from test cell ``start`` on.

    Returns why it ended (finished, exited, timeout, channel), its exit code, the last step
    it began, the records of the test cells it reported, and a detail for channel errors.
    """
    read_fd, write_fd = os.pipe()
    launch, env = _launch(job_dir, assignment, write_fd, limits)
    try:
        process = subprocess.Popen(
            launch.argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,), start_new_session=True,
            preexec_fn=sandbox.preexec(limits))
    finally:
        os.close(write_fd)
    reader = FrameReader()
    results: dict[int, dict] = {}
    last_step: int | None = None
    why, detail = "exited", ""
    # The grader's own clock: each step may reset it once, steps only move forward, so
    # whatever the sandbox writes, it ends by startup + the sum of the steps' limits.
    deadline = time.monotonic() + limits.startup_seconds
    beat("student", limits.startup_seconds + STUDENT_SLACK_SECONDS)
    try:
        while True:
            if time.monotonic() >= deadline:
                why = "timeout"
                break
            chunk = processes.read_some(read_fd, deadline)
            if chunk is None:
                continue
            messages, error = reader.feed(chunk)
            if reader.closed:
                break
            for message in messages:
                if "step" in message:
                    step = message["step"]
                    if (type(step) is int and 0 <= step < len(cells)
                            and (last_step is None or step > last_step)):
                        last_step = step
                        kind = cells[step]["kind"]
                        limit = limits.cell_seconds if kind == "code" else limits.step_seconds
                        deadline = time.monotonic() + limit
                        beat("student", limit + STUDENT_SLACK_SECONDS)
                elif "result" in message:
                    position = message["result"]
                    if (type(position) is int and position == last_step
                            and cells[position]["kind"] == "check" and position not in results
                            and isinstance(message.get("verdicts"), dict)):
                        results[position] = message["verdicts"]
                elif message.get("finished") is True:
                    why = "finished"
            if why == "finished":
                break
            if error is not None:
                why, detail = "channel", str(error)
                break
    finally:
        os.close(read_fd)
        if why not in ("timeout", "channel", "finished"):
            try:
                process.wait(timeout=EXIT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        processes.kill_group(process)
        beat("grader")
    return why, process.returncode, last_step, results, detail


def _describe_stop(why: str, code: int | None, limits: Limits, kind: str, detail: str) -> str:
    if why == "timeout":
        if kind == "code":
            return f"it did not finish within {limits.cell_seconds:g} seconds"
        return (f"it ran out of time: it did not finish within {limits.step_seconds:g} seconds, "
                "the time a test cell gets (as in Validate)")
    if why == "channel":
        return f"the sandbox stopped: {detail}"
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        if name in ("SIGXCPU", "SIGKILL", "SIGXFSZ"):
            return f"the process was stopped by the grader's limits ({name})"
        return f"the process was killed by {name}"
    return f"the Python process exited (exit code {code}), e.g. through sys.exit or os._exit"


def judge_notebook(
    assignment: str,
    cells: list[dict],
    *,
    limits: Limits | None = None,
    seed: int | None = None,
    device: str | None = None,
) -> dict[str, Verdict]:
    """Decide every graded test cell of one notebook.

    ``cells`` lists the notebook in order: ``{"kind": "code", "source": ...}`` for the student's
    code and ``{"kind": "check", "grade_id": ..., "checks": ["assignment.name", ...]}`` for each
    graded test cell. Returns a verdict per ``grade_id``.
    """
    sandbox.require()
    limits = limits or Limits()
    if seed is None:
        seed = grading_seed()
    if seed is None:
        seed = secrets.randbits(31)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    checks = checks_for(assignment)
    keys = [key for item in cells if item["kind"] == "check" for key in item["checks"]]
    for key in keys:
        owner, name = key.split(".", 1)
        if owner != assignment or name not in checks:
            raise KeyError(f"test cell names unknown check {key!r} for assignment {assignment!r}")
    inputs = {}
    for offset, key in enumerate(keys):
        generator = torch.Generator().manual_seed(seed + offset)
        inputs[key] = checks[key.split(".", 1)[1]].make_inputs(generator)

    positions = [i for i, item in enumerate(cells) if item["kind"] == "check"]
    stops: dict[int, str] = {}
    outputs: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="losslab-sandbox-") as tmp:
        job_dir = Path(tmp)
        # As root, student code runs as a fresh unprivileged uid that must read this folder
        # (this submission's inputs and code, nothing else); otherwise it stays private.
        shared = 0o755 if sandbox.host_ids() is not None else 0o700
        job_dir.chmod(shared)
        torch.save(inputs, job_dir / "inputs.pt")
        start = 0
        while True:
            pending = [p for p in positions if p >= start and p not in outputs and p not in stops]
            if not pending:
                break
            job = {"assignment": assignment, "cells": cells, "start": start, "device": device}
            (job_dir / "job.json").write_text(json.dumps(job))
            for path in job_dir.iterdir():
                path.chmod(shared & 0o644)
            why, code, last_step, results, detail = _run_sandbox(job_dir, assignment, cells,
                                                                 start, limits)
            for position in pending:
                if position in results:
                    outputs[position] = results[position]
            if why == "finished":
                for position in pending:
                    if position not in outputs:
                        stops.setdefault(position, "no result was recorded")
                break
            kind = cells[last_step]["kind"] if last_step is not None else "code"
            reason = _describe_stop(why, code, limits, kind, detail)
            if why != "channel" and last_step is not None and kind == "check":
                if last_step not in outputs:
                    stops[last_step] = f"while this test ran, {reason}"
                start = last_step + 1
            else:
                where = ""
                if last_step is not None and kind == "code":
                    where = f" in the cell starting {_first_line(cells[last_step])!r}"
                for position in pending:
                    if position not in outputs:
                        stops[position] = f"while your notebook's code ran{where}, {reason}"
                break

    verdicts: dict[str, Verdict] = {}
    for position in positions:
        item = cells[position]
        messages: list[str] = []
        if position in stops:
            messages.append(f"Could not test your code: {stops[position]}.")
        else:
            for key in item["checks"]:
                check = checks[key.split(".", 1)[1]]
                messages.extend(_judge_one(check, inputs[key], outputs[position].get(key),
                                           device))
        verdicts[item["grade_id"]] = Verdict(passed=not messages, messages=messages)
    return verdicts


def _first_line(item: dict) -> str:
    lines = [line.strip() for line in item.get("source", "").splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= 60 else first[:57] + "..."


_LEAVES = (str, bool, int, float, type(None))
# Bounds on one check's record as a whole (settings.MAX_RECORD_*): what the probe sends is
# far below them.


def well_formed(value, *, clock=time.monotonic, seconds: float = MAX_VALIDATION_SECONDS) -> bool:
    """Records are plain data: dicts with str keys, lists, str/int/float/bool/None and plain
    tensors of bounded size, nested at most 8 deep. Anything else fails that check only.

    The walk is linear in the record's size: every dict and list is visited once, one seen
    twice (a shared reference or a cycle, which the probe never sends) makes the record
    malformed, the whole record holds at most ``MAX_RECORD_NODES`` values and
    ``MAX_RECORD_ELEMENTS`` tensor elements, and the walk stops (malformed) after ``seconds``
    on the grader's own clock.
    """
    deadline = clock() + seconds
    seen: set[int] = set()
    stack = [(value, 0)]
    nodes = elements = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > 8 or nodes > MAX_RECORD_NODES:
            return False
        if nodes % 1024 == 0 and clock() > deadline:
            return False
        kind = type(item)
        if kind in _LEAVES:
            if kind is str and len(item) > 10_000:
                return False
            continue
        if kind is torch.Tensor:
            if item.layout != torch.strided or item.numel() > 4_000_000:
                return False
            elements += item.numel()
            if elements > MAX_RECORD_ELEMENTS:
                return False
            continue
        if kind is not list and kind is not dict:
            return False
        if id(item) in seen or len(item) > 1000:
            return False
        seen.add(id(item))
        if kind is list:
            stack.extend((child, depth + 1) for child in item)
        else:
            for key, child in item.items():
                if type(key) is not str or len(key) > 10_000:
                    return False
                stack.append((child, depth + 1))
    return True


def _judge_one(check, inputs: dict, outputs, device: str) -> list[str]:
    if not isinstance(outputs, dict) or not well_formed(outputs):
        return [f"{check.title}: no well-formed result was recorded."]
    if "__crash__" in outputs:
        return [f"{check.title}: testing stopped with {str(outputs['__crash__'])[:500]}"]
    used = outputs.get("__forbidden__")
    if not isinstance(used, list) or not all(isinstance(name, str) for name in used):
        return [f"{check.title}: no well-formed result was recorded."]
    if used:
        names = ", ".join(f"`{name}`" for name in readable(used))
        return [f"{check.title}: this exercise asks you not to use PyTorch's own "
                f"implementation, but your code ran {names}."]
    outputs = dict(outputs, __device__=device)
    try:
        check.judge(inputs, outputs)
    except CheckFailed as failure:
        return [f"{check.title}: {failure}"]
    except Exception as error:  # noqa: BLE001 - a malformed result must not reveal the judge
        return [f"{check.title}: the result could not be checked ({type(error).__name__})."]
    return []


class JudgeTestCells(NbGraderPreprocessor):
    """nbgrader's step for the judge: decide each graded test cell outside the kernel
    (:func:`judge_notebook`) and write the verdict as the cell's output."""

    memory_mb = Integer(help="Sandbox heap limit (RLIMIT_DATA), in MiB.").tag(config=True)
    step_seconds = Float(help="Seconds one notebook cell or one check may take.").tag(
        config=True
    )

    @default("memory_mb")
    def _memory_default(self):
        return Limits().memory_mb

    @default("step_seconds")
    def _step_default(self):
        return Limits().step_seconds
    device = Unicode("", help="Device for the checks; empty: cuda when available.").tag(
        config=True
    )

    def preprocess(self, nb, resources):
        assignment = resources["nbgrader"]["assignment"]
        if assignment not in ASSIGNMENTS:
            self.log.warning("No isolated checks for assignment %s", assignment)
            return nb, resources
        cells, tests = [], []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if is_test_cell(cell):
                entry = {
                    "kind": "check",
                    "grade_id": cell.metadata["nbgrader"]["grade_id"],
                    "checks": checks_named(cell.source),
                }
                cells.append(entry)
                tests.append((cell, entry))
            else:
                cells.append({"kind": "code", "source": cell.source})
        limits = Limits(memory_mb=self.memory_mb, step_seconds=self.step_seconds)
        verdicts = judge_notebook(
            assignment,
            [entry for entry in cells if entry["kind"] == "code" or entry["checks"]],
            limits=limits,
            device=self.device or None,
        )
        for cell, entry in tests:
            verdict = verdicts.get(entry["grade_id"])
            if verdict is None:
                messages = ["This test cell names no check, so it cannot be graded."]
            else:
                messages = verdict.messages
            cell.outputs = [self._failure(messages)] if messages else []
        return nb, resources

    @staticmethod
    def _failure(messages: list[str]) -> NotebookNode:
        text = "\n".join(messages)
        return NotebookNode(
            output_type="error",
            ename=VERDICT_ENAME,
            evalue=text,
            traceback=[f"\x1b[0;31m{VERDICT_ENAME}\x1b[0m: {line}" for line in messages],
        )
