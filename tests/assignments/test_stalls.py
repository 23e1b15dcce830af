"""The deadlocks that stopped grading workers, made on purpose, and the worker moving on.

A ZeroMQ context that reaches the garbage collector while one of its sockets is open, or after
a socket was closed with a message still queued for a peer that is gone and no linger bound,
blocks in ``term()`` for ever, inside whatever code allocated enough to start a collection.
The grading kernel manager gives every socket a linger of 0 and closes its sockets and contexts
itself (``release``); the worker destroys any context still open after a submission and
collects its garbage before it reports; and a worker that stays silent anyway is replaced and
its submission graded again, once, on a fresh worker.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from assignment_helpers import ROOT, cell_scores, grading_env, student_notebook, write_submission

from losslab.grading.batch import WorkerProcess, _run_worker
from losslab.grading.gradebook import prepare_gradebook
from losslab.grading.intake import Job

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap is needed to start a grading kernel")


def _python(source: str, timeout: float) -> subprocess.CompletedProcess | None:
    """Run ``source`` in a fresh Python; ``None`` when it did not end within ``timeout``."""
    try:
        return subprocess.run([sys.executable, "-W", "ignore", "-c", textwrap.dedent(source)],
                              cwd=ROOT, env=grading_env(), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


# A DEALER socket connected to an ipc path nobody serves, holding one message for it, left in
# a reference cycle with its context; then a collection.
HAZARD = '''
import gc, os, tempfile, time, zmq
{make_context}
socket = context.socket(zmq.DEALER)
socket.connect("ipc://" + os.path.join(tempfile.mkdtemp(), "gone"))
socket.send(b"for a peer that is gone")
{before_collection}
cycle = [context, socket]
cycle.append(cycle)
del context, socket, cycle
start = time.monotonic()
gc.collect()
print("COLLECTED", round(time.monotonic() - start, 1))
'''

STATES = {
    "open socket": "",
    "closed socket with a queued message": "socket.close()",
}


@pytest.mark.parametrize("state", STATES)
def test_the_deadlock_is_real_a_plain_context_blocks_the_collector(state):
    run = _python(HAZARD.format(make_context="context = zmq.Context()",
                                before_collection=STATES[state]), timeout=8)
    assert run is None, "expected gc.collect() to block in Context.term(); it ended: " + (
        run.stdout + run.stderr)


@pytest.mark.parametrize("state", STATES)
def test_a_grading_kernel_managers_contexts_never_block_the_collector(state):
    # The same states, on the contexts the grading kernel manager makes (its own and its
    # clients'), after release(): what the worker does when a submission's notebook has run.
    run = _python(HAZARD.format(
        make_context="from losslab.grading.kernel import LimitedKernelManager\n"
                     "manager = LimitedKernelManager()\n"
                     "client = manager.client()\n"
                     "context = client.context if 'queued' in " + repr(state) +
                     " else manager.context",
        before_collection=STATES[state] + "\nmanager.release()\ndel manager, client"),
        timeout=60)
    assert run is not None, "gc.collect() blocked on a grading kernel's context"
    assert "COLLECTED" in run.stdout, run.stdout + run.stderr


def test_the_worker_destroys_a_context_left_open_before_it_collects():
    # What the worker does after every submission, on a context nobody closed (the sweep
    # cannot help a socket already closed with linger -1: that is why every grading socket is
    # made with linger 0).
    run = _python(HAZARD.format(
        make_context="context = zmq.Context()",
        before_collection="from losslab.grading.worker import close_leftover_contexts\n"
                          "print('DESTROYED', close_leftover_contexts())"), timeout=60)
    assert run is not None, "gc.collect() blocked after the sweep"
    assert "DESTROYED 1" in run.stdout and "COLLECTED" in run.stdout, run.stdout + run.stderr


KERNEL_STATES = {
    # The peer dies with a request queued for it.
    "killed with a request queued": "os.killpg(manager.provisioner.process.pid, "
                                    "signal.SIGKILL)\nclient.execute('1 + 1')",
    # The kernel's detached child holds its sockets; the kernel itself is gone.
    "detached child holds the sockets": (
        "client.execute('import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    "
        "time.sleep(600)\\nos._exit(0)')\ntime.sleep(3)\nclient.execute('1 + 1')"),
    # The kernel wrote over its connection and socket files and still runs.
    "socket files overwritten": (
        "client.execute('import glob, os, sys\\nfolder = os.path.dirname(sys.argv[sys.argv."
        "index(\"-f\") + 1])\\nfor path in glob.glob(folder + \"/*\"):\\n    os.remove(path)"
        "\\n    open(path, \"w\").write(\"garbage\")')\ntime.sleep(3)\nclient.execute('1 + 1')"),
}

KERNEL_HAZARD = '''
import asyncio, gc, os, signal, time, zmq
from losslab.grading.kernel import LimitedKernelManager

async def start():
    manager = LimitedKernelManager(kernel_name="python3")
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=120)
    return manager, client

manager, client = asyncio.run(start())
{state}
manager.release()
cycle = [manager, client]
cycle.append(cycle)
del manager, client, cycle
start = time.monotonic()
gc.collect()
left = [o for o in gc.get_objects() if isinstance(o, zmq.Context) and not o.closed]
print("COLLECTED", round(time.monotonic() - start, 1), "OPEN", len(left))
'''


@needs_bwrap
@pytest.mark.parametrize("state", KERNEL_STATES)
def test_a_real_grading_kernel_leaves_no_socket_or_context_behind(state):
    run = _python(KERNEL_HAZARD.format(state=KERNEL_STATES[state]), timeout=240)
    assert run is not None, f"{state}: the worker's collection blocked after release()"
    assert "COLLECTED" in run.stdout and "OPEN 0" in run.stdout, run.stdout + run.stderr[-3000:]


def _course(tmp_path: Path, assignment: str) -> tuple[Path, Path]:
    course = tmp_path / "course"
    prepare_gradebook(course, {assignment})
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(course / "gradebook.db", work / "gradebook.db")
    return course, work


# A worker that is stuck in Context.term() on its first life: a context with an open socket
# and a queued message sits in a reference cycle when it starts, and the first collection
# (any allocation) blocks in it for ever. Its replacement starts clean.
POISONED_WORKER = '''
import gc, os, sys, tempfile, zmq
marker = sys.argv[1]
if not os.path.exists(marker):
    open(marker, "w").close()
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.connect("ipc://" + os.path.join(tempfile.mkdtemp(), "gone"))
    socket.send(b"queued")
    cycle = [context, socket]
    cycle.append(cycle)
    del context, socket, cycle
    gc.collect()
from losslab.grading.worker import main
sys.exit(main(sys.argv[2:]))
'''


@needs_bwrap
def test_a_stuck_worker_is_replaced_and_the_submission_retried_without_charge(tmp_path,
                                                                            monkeypatch):
    for key, value in grading_env(LOSSLAB_GRADING_SEED="3").items():
        monkeypatch.setenv(key, value)
    course, work = _course(tmp_path, "choose_loss")
    write_submission(tmp_path / "submitted", "alice", "choose_loss",
                     student_notebook("choose_loss", answers={}))
    job = Job("alice", "choose_loss", tmp_path / "submitted" / "alice" / "choose_loss")
    worker = WorkerProcess([sys.executable, "-c", POISONED_WORKER, str(tmp_path / "marker")])
    start = time.monotonic()
    try:
        attempt = _run_worker(job, work, timeout=600, worker=worker, stall=10)
    finally:
        worker.stop()
    took = time.monotonic() - start
    assert attempt.status == "graded", attempt
    assert attempt.attempts == 2
    assert "retried once on a fresh worker" in attempt.note
    assert "made no progress for 10 seconds while none of the submission's code" in attempt.note
    # The submission's own time is that of the attempt that graded it.
    assert attempt.seconds <= took - 10
    from losslab.grading.gradebook import merge_result

    score, most, _ = merge_result(course, job, attempt.folder)
    assert score == most > 0


# Kernels that leave each deadlock state behind, then an honest classmate on the same worker.
LEAVERS = {
    "detached-children": "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
                         "    time.sleep(600)\n    os._exit(0)\nos._exit(0)",
    "overwrites-its-sockets": "import glob, os, sys\n"
                              "folder = os.path.dirname(sys.argv[sys.argv.index('-f') + 1])\n"
                              "for path in glob.glob(folder + '/*'):\n    os.remove(path)\n"
                              "    open(path, 'w').write('garbage')",
    "garbage-into-its-sockets": "import os\nfor fd in range(3, 64):\n    try:\n"
                                "        os.write(fd, b'\\xff' * 4096)\n"
                                "    except OSError:\n        pass",
}


@needs_bwrap
def test_one_worker_moves_on_after_kernels_that_leave_sockets_behind(tmp_path):
    subs = tmp_path / "submitted"
    order = []
    for number, (name, source) in enumerate(LEAVERS.items()):
        def edit(nb, source=source):
            from nbformat.v4 import new_code_cell

            nb.cells.append(new_code_cell(source))

        write_submission(subs, f"{number}a-{name}", "choose_loss",
                         student_notebook("choose_loss", answers={}, edit=edit))
        write_submission(subs, f"{number}b-honest", "choose_loss",
                         student_notebook("choose_loss", answers={}))
        order += [f"{number}a-{name}", f"{number}b-honest"]
    course = tmp_path / "course"
    env = grading_env(LOSSLAB_GRADING_SEED="4", LOSSLAB_STALL_SECONDS="60")
    run = subprocess.run([sys.executable, "-m", "losslab.grading", "grade", "--submissions",
                          str(subs), "--out", str(course), "--jobs", "1"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with (course / "grading_log.csv").open() as handle:
        log = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert sorted(log) == sorted(order)
    scores = cell_scores(course)
    for student in order:
        row = log[student]
        if "garbage" in student:
            # Known limit: a kernel that writes garbage into its own ZeroMQ sockets can leave
            # the worker stuck in its own code; the watchdog replaces it, retries once, and
            # logs the failure. What counts here is that the next classmate is graded in full.
            assert row["status"] == "graded" or "made no progress" in row["message"], row
            continue
        # One worker graded them all in turn, none stalled, each got what it deserves.
        assert row["status"] == "graded" and row["attempts"] == "1", (
            f"{student}: {row['status']}, {row['attempts']} attempts: {row['message']} "
            f"[{row['note']}]")
        cells = scores[("choose_loss", student)]
        assert all(score == most for score, most, _ in cells.values()), (student, cells)


# A stand-in worker whose first life reports a fault of the grader's own (a locked gradebook)
# and whose second life dies: what the log says when the grader fails twice.
FAILING_WORKER = '''
import json, os, sys
marker, fd = sys.argv[1], int(sys.argv[3])
first = not os.path.exists(marker)
open(marker, "a").close()
os.write(fd, b'LOSSLAB-BEAT {"phase": "grader", "seconds": 0}\\n')
sys.stdin.readline()
if first:
    report = {"autograde": False, "feedback": False, "fault": "grader",
              "error": "the grader itself failed while autograding "
                       "(sqlite3.OperationalError: database is locked)"}
    os.write(fd, ("LOSSLAB-RESULT " + json.dumps(report) + "\\n").encode())
    sys.stdin.readline()
os._exit(9)
'''


def test_a_grader_fault_is_retried_once_and_then_named(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "gradebook.db").write_bytes(b"")
    write_submission(tmp_path / "submitted", "bob", "choose_loss",
                     student_notebook("choose_loss", answers={}))
    job = Job("bob", "choose_loss", tmp_path / "submitted" / "bob" / "choose_loss")
    worker = WorkerProcess([sys.executable, "-c", FAILING_WORKER, str(tmp_path / "marker")])
    try:
        attempt = _run_worker(job, work, timeout=120, worker=worker, stall=60)
    finally:
        worker.stop()
    assert attempt.status == "failed" and attempt.attempts == 2, attempt
    assert attempt.message.startswith("the grader itself failed, and again when the submission "
                                      "was retried on a fresh worker: the grading worker "
                                      "stopped (exit code 9)"), attempt.message
    assert "database is locked" in attempt.note and "retried once" in attempt.note


@needs_bwrap
def test_a_long_cell_is_student_time_for_the_worker_the_grader_runs(tmp_path, monkeypatch):
    """The grader's own worker (``python -m losslab.grading.worker``) reports each step of the
    submission's code, so a cell that runs longer than the stall bound, within its own limit,
    is neither a stall nor retried."""
    for key, value in grading_env(LOSSLAB_GRADING_SEED="3").items():
        monkeypatch.setenv(key, value)
    course, work = _course(tmp_path, "choose_loss")
    nb = student_notebook("choose_loss", answers={})
    from nbformat.v4 import new_code_cell
    nb.cells.append(new_code_cell("import time\ntime.sleep(45)\nprint('slow but done')"))
    write_submission(tmp_path / "submitted", "carol", "choose_loss", nb)
    job = Job("carol", "choose_loss", tmp_path / "submitted" / "carol" / "choose_loss")
    worker = WorkerProcess()
    assert worker.command[1:] == ["-m", "losslab.grading.worker"]
    try:
        attempt = _run_worker(job, work, timeout=600, worker=worker, stall=30)
    finally:
        worker.stop()
    assert attempt.status == "graded", attempt
    assert attempt.attempts == 1 and "retried" not in attempt.note, attempt
    assert attempt.seconds > 45


@needs_bwrap
def test_a_worker_killed_mid_submission_leaves_no_folder_behind(tmp_path, monkeypatch):
    """A worker is killed while its kernel runs (the submission used up its time): the kernel's
    connection folder and every sandbox folder go with it, in the system's temporary folder
    and in the run's."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    for key, value in grading_env(LOSSLAB_GRADING_SEED="3", TMPDIR=str(system_tmp)).items():
        monkeypatch.setenv(key, value)
    course, work = _course(tmp_path, "choose_loss")
    nb = student_notebook("choose_loss", answers={})
    from nbformat.v4 import new_code_cell
    nb.cells.insert(1, new_code_cell("import time\ntime.sleep(600)"))
    write_submission(tmp_path / "submitted", "dave", "choose_loss", nb)
    job = Job("dave", "choose_loss", tmp_path / "submitted" / "dave" / "choose_loss")
    run_tmp = tmp_path / "run-tmp"
    run_tmp.mkdir()
    worker = WorkerProcess(tmp_root=run_tmp)
    seen: list[str] = []
    done = threading.Event()

    def watch(folder: Path) -> None:
        # What the worker holds while the kernel sleeps: its connection folder.
        while not done.wait(0.5):
            seen.extend(path.name for path in folder.glob("losslab-kernel-*"))

    try:
        worker._start()
        assert worker._await(600, 600, until_ready=True) is None
        watcher = threading.Thread(target=watch, args=(Path(worker.tmp),))
        watcher.start()
        try:
            result = worker.grade(_prepare(job, work), job, timeout=60, stall=600)
        finally:
            done.set()
            watcher.join()
    finally:
        worker.stop()
    assert seen, "the kernel never started, so nothing was killed in the middle of it"
    assert result == "grading did not finish within 60 seconds", result
    assert list(system_tmp.iterdir()) == []
    assert list(run_tmp.iterdir()) == []


def _prepare(job: Job, work: Path) -> Path:
    from losslab.grading.batch import _prepare_folder

    return _prepare_folder(job, work, job.folder / "choose_loss.ipynb")
