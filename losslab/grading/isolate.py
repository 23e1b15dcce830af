"""Decide graded test cells outside the student's kernel.

The student's code runs in a sandbox process (:mod:`losslab.grading.sandbox`) under resource
limits; it only records what the student's functions return. The references are computed
and compared here, in a process the student's code never ran in.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checks import CheckFailed, checks_for
from .privileges import become, give_to, unprivileged_ids

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Limits:
    """Resource limits of one sandbox process."""

    memory_mb: int = int(os.environ.get("LOSSLAB_SANDBOX_MEMORY_MB", "3072"))
    step_seconds: float = float(os.environ.get("LOSSLAB_SANDBOX_STEP_SECONDS", "20"))
    startup_seconds: float = 60.0
    cpu_seconds: int = 600
    file_mb: int = 256


@dataclass
class Verdict:
    """The decision on one graded test cell."""

    passed: bool
    messages: list[str] = field(default_factory=list)


def _apply_limits(limits: Limits, ids: tuple[int, int] | None = None):
    def apply() -> None:
        memory = limits.memory_mb * 1024 * 1024
        # RLIMIT_DATA bounds heap and anonymous mappings without breaking CUDA's large
        # address-space reservations the way RLIMIT_AS would.
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        become(ids)

    return apply


def forbidden_uses(sources: list[str], names: tuple[str, ...]) -> list[str]:
    """Forbidden names the code reaches for (``F.cross_entropy``, ``from ... import softmax``)."""
    found = set()
    wanted = set(names)
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in wanted:
                found.add(node.attr)
            elif isinstance(node, ast.alias) and node.name.split(".")[-1] in wanted:
                found.add(node.name.split(".")[-1])
    return sorted(found)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _run_sandbox(job_dir: Path, limits: Limits) -> tuple[str, int | None, str | None]:
    """Run one sandbox; return why it ended, its exit code, and the last step it began."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["MPLBACKEND"] = "Agg"
    env["OMP_NUM_THREADS"] = "1"
    env["LOSSLAB_AUTOGRADE"] = "1"
    workdir = job_dir / "cwd"
    workdir.mkdir(exist_ok=True)
    env["HOME"] = str(workdir)
    results = job_dir / "results"
    ids = unprivileged_ids()
    give_to(job_dir, ids)
    process = subprocess.Popen(
        [sys.executable, "-m", "losslab.grading.sandbox", str(job_dir)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_apply_limits(limits, ids),
    )
    seen: set[str] = set()
    last_step = None
    deadline = time.monotonic() + limits.startup_seconds + limits.step_seconds
    while True:
        code = process.poll()
        markers = {p.name for p in results.iterdir()}
        for name in sorted(markers - seen, key=lambda n: (n.split("-")[-1], n)):
            if name.startswith(("cell-", "check-")):
                last_step = name
        if markers - seen:
            deadline = time.monotonic() + limits.step_seconds
            seen = markers
        if code is not None:
            # The sandbox may leave children behind; end them with it.
            _kill_group(process)
            return ("finished" if "finished" in markers else "exited"), code, last_step
        if time.monotonic() > deadline:
            _kill_group(process)
            return "timeout", None, last_step
        time.sleep(0.05)


def _describe_stop(why: str, code: int | None, limits: Limits) -> str:
    if why == "timeout":
        return f"it did not finish within {limits.step_seconds:g} seconds"
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        if name in ("SIGXCPU", "SIGKILL"):
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
    limits = limits or Limits()
    if seed is None:
        seed = int(os.environ.get("LOSSLAB_GRADING_SEED", secrets.randbits(31)))
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
    sources = [item["source"] for item in cells if item["kind"] == "code"]

    positions = [i for i, item in enumerate(cells) if item["kind"] == "check"]
    stops: dict[int, str] = {}
    outputs: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="losslab-sandbox-") as tmp:
        job_dir = Path(tmp)
        torch.save(inputs, job_dir / "inputs.pt")
        start = 0
        while True:
            pending = [p for p in positions if p >= start and p not in outputs and p not in stops]
            if not pending:
                break
            results = job_dir / "results"
            if results.exists():
                for item in results.iterdir():
                    item.unlink()
            results.mkdir(exist_ok=True)
            job = {"assignment": assignment, "cells": cells, "start": start, "device": device}
            (job_dir / "job.json").write_text(json.dumps(job))
            why, code, last_step = _run_sandbox(job_dir, limits)
            for position in pending:
                path = results / f"result-{position}.pt"
                if path.exists():
                    try:
                        outputs[position] = torch.load(path, weights_only=True)
                    except Exception:  # noqa: BLE001 - whatever the sandbox wrote
                        stops[position] = "its results could not be read back"
            if why == "finished":
                for position in pending:
                    if position not in outputs:
                        stops.setdefault(position, "no result was recorded")
                break
            reason = _describe_stop(why, code, limits)
            if last_step and last_step.startswith("check-"):
                failed = int(last_step.split("-")[1])
                if failed not in outputs:
                    stops[failed] = f"while this test ran, {reason}"
                start = failed + 1
            else:
                where = ""
                if last_step:
                    where = f" in the cell starting {_first_line(cells[int(last_step[5:])])!r}"
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
                messages.extend(_judge_one(check, inputs[key], outputs[position].get(key), sources))
        verdicts[item["grade_id"]] = Verdict(passed=not messages, messages=messages)
    return verdicts


def _first_line(item: dict) -> str:
    lines = [line.strip() for line in item.get("source", "").splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= 60 else first[:57] + "..."


def _judge_one(check, inputs: dict, outputs: dict | None, sources: list[str]) -> list[str]:
    if not isinstance(outputs, dict):
        return [f"{check.title}: no result was recorded."]
    if "__crash__" in outputs:
        return [f"{check.title}: testing stopped with {outputs['__crash__']}"]
    used = sorted(set(outputs.get("__forbidden__") or []))
    mentioned = forbidden_uses(sources, check.forbidden)
    if used or mentioned:
        names = ", ".join(used + [f"`{n}`" for n in mentioned if all(n not in u for u in used)])
        return [f"{check.title}: this exercise asks you not to use {names}."]
    try:
        check.judge(inputs, outputs)
    except CheckFailed as failure:
        return [f"{check.title}: {failure}"]
    except Exception as error:  # noqa: BLE001 - a malformed result must not reveal the judge
        return [f"{check.title}: the result could not be checked ({type(error).__name__})."]
    return []
