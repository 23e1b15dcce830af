"""Process plumbing shared by every stage: child environments, reading a pipe under a deadline,
killing a process group, and a worker's progress reports.

The grader starts three kinds of processes: workers (trusted, :mod:`.batch`), student kernels
(:mod:`.kernel`) and probe sandboxes (:mod:`.judge`), the last two inside bubblewrap
(:mod:`.sandbox`). Each is started in a session of its own, so that :func:`kill_group` takes
every process it left behind; each is read through a pipe of its own with :func:`read_some`,
which never waits past the caller's deadline.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

from .settings import AUTOGRADE_ENV, REPO_ROOT


def worker_env() -> dict:
    """The environment of a trusted child (a grading worker, ``nbgrader`` itself): this one,
    with this interpreter first on PATH, the repository importable, and one thread each."""
    env = _repo_importable(dict(os.environ))
    env["PATH"] = os.pathsep.join([str(os.path.dirname(sys.executable)), env.get("PATH", "")])
    # Parallel workers each get one thread: the cores are shared out by process.
    env.update(single_thread_env())
    return env


def _repo_importable(env: dict) -> dict:
    """``env`` with the repository first on its ``PYTHONPATH``."""
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part
    )
    return env


def single_thread_env() -> dict:
    """What every child of the grader gets: one thread each, and no display."""
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def unsafe_student_env(base: dict | None = None) -> dict:
    """Student code's environment without isolation (``--unsafe-no-isolation``): ``base`` (or
    this one) marked as being graded, with the repository importable."""
    env = _repo_importable(dict(base or os.environ))
    env.update(single_thread_env())
    env[AUTOGRADE_ENV] = "1"
    return env


def sandboxed_env(work: str, python_path: str) -> dict:
    """The whole environment of student code inside the sandbox (bubblewrap clears the rest):
    its home is the work folder ``work``, it imports from ``python_path``, and it sees the
    GPU settings of this process, if any."""
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": work, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": python_path,
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        **single_thread_env(), AUTOGRADE_ENV: "1",
        "MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": f"{work}/.ipython",
    }
    for key in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def bwrap_env() -> dict:
    """The environment bubblewrap itself starts with; it clears it (``--clearenv``) and sets the
    sandbox's own (:func:`losslab.grading.sandbox.command`)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def read_some(fd: int, deadline: float, poll: float = 1.0) -> bytes | None:
    """What ``fd`` has to read, waiting at most ``poll`` seconds and never past ``deadline``
    (a :func:`time.monotonic` time): ``None`` when nothing came, ``b""`` at its end."""
    wait = max(0.0, min(deadline - time.monotonic(), poll))
    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return None
    return os.read(fd, 65536)


def kill_group(process: subprocess.Popen, wait: float | None = None) -> bool:
    """SIGKILL ``process`` and its whole process group (it was started with
    ``start_new_session``), then reap it, waiting at most ``wait`` seconds (``None``: until it
    is gone). True when it is gone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.kill()
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        return False
    return True


# The pipe on which this process, a grading worker, reports its progress to the grader;
# ``None`` outside ``--serve`` (plain ``nbgrader autograde``, tests), where :func:`beat` does
# nothing. Kept here, not in the worker's module, so that every stage reports through the one
# module object whatever name the worker was started under (``python -m`` runs it as
# ``__main__``).
_PROGRESS_FD: int | None = None


def report_progress_to(fd: int) -> None:
    """Send this process's :func:`beat` lines to the pipe ``fd`` from now on."""
    global _PROGRESS_FD
    _PROGRESS_FD = fd


def beat(phase: str, seconds: float = 0.0) -> None:
    """Tell the grader this worker made progress: ``phase`` is ``"student"`` while student code
    runs for at most ``seconds``, ``"start"`` while a fresh worker imports its libraries for at
    most ``seconds``, ``"grader"`` while the worker's own code runs."""
    if _PROGRESS_FD is None:
        return
    line = "LOSSLAB-BEAT " + json.dumps({"phase": phase, "seconds": round(float(seconds), 1)})
    try:
        write_all(_PROGRESS_FD, (line + "\n").encode())
    except OSError:
        pass  # the grader is gone; the worker's job loop ends when its stdin does


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many writes it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
