"""The batch: grade many submissions at once on a pool of workers, each in its own course folder.

nbgrader autogrades one student at a time. Here every submission is autograded by
:mod:`losslab.grading.worker` in a private copy of the course (its own ``gradebook.db``), as
many at a time as there are cores; the results are merged into one gradebook
(:mod:`.gradebook`), and feedback and autograded notebooks are copied next to it. A submission that
breaks its worker is reported and the run goes on. Student code runs only inside bubblewrap
(:mod:`.sandbox`), started by the workers; everything this process writes is private to the
grading user (umask 077).
"""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from . import processes, sandbox
from .gradebook import merge_result, prepare_gradebook
from .intake import Job, check_notebook, choose_notebook
from .settings import (
    MAX_NOTEBOOK_BYTES,
    MAX_REPORT_BYTES,
    REPO_ROOT,
    SUBMISSION_SECONDS,
    WORKER_POLL_SECONDS,
    stall_seconds,
)


@dataclass
class Outcome:
    job: Job
    status: str
    seconds: float
    message: str = ""
    score: float | None = None
    max_score: float | None = None
    needs_manual_grade: bool = False
    isolation: str = ""
    note: str = ""
    attempts: int = 1


class WorkerProcess:
    """A long-lived ``losslab.grading.worker --serve FD`` process; restarted when it fails.

    Student code never runs in it (only in the bubblewrapped kernels and sandboxes it starts),
    so one worker can grade submission after submission. Its reports come over a pipe of their
    own that no student process inherits; its stdout and stderr go to /dev/null.

    Each process gets a temporary folder of its own (its ``TMPDIR``, inside ``tmp_root``) where
    it makes its kernels' connection folders and its sandboxes' folders; :meth:`stop` removes it
    with the process, so a worker killed in the middle of a submission leaves nothing behind.
    """

    def __init__(self, command: list[str] | None = None, env: dict | None = None,
                 tmp_root: Path | None = None) -> None:
        # The worker's command line, before ``--serve FD``, and what it adds to the environment.
        self.command = command or [sys.executable, "-m", "losslab.grading.worker"]
        self.env = env or {}
        self.tmp_root = tmp_root
        self.tmp: str | None = None
        self.process: subprocess.Popen | None = None
        self.reports: int | None = None
        # When the current job was handed over: the submission's own time starts there.
        self.sent_at = time.monotonic()

    def _start(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self.tmp = tempfile.mkdtemp(prefix="worker-", dir=self.tmp_root)
            read_fd, write_fd = os.pipe()
            try:
                self.process = subprocess.Popen(
                    [*self.command, "--serve", str(write_fd)],
                    cwd=REPO_ROOT, env={**processes.worker_env(), **self.env, "TMPDIR": self.tmp},
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                    start_new_session=True, bufsize=1, pass_fds=(write_fd,),
                )
            finally:
                os.close(write_fd)
            self.reports = read_fd
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            processes.kill_group(self.process)
            self.process = None
        if self.reports is not None:
            os.close(self.reports)
            self.reports = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def grade(self, course: Path, job: Job, timeout: float,
              stall: float | None = None) -> dict | GraderFault | str:
        """The worker's result dict; a :class:`GraderFault` when the worker made no progress for
        ``stall`` seconds beyond what the running step may take, died, or sent what it never
        sends (student code never runs in it, so none of this is the submission's doing);
        else the string saying the submission used up its own time.

        A fresh worker is first waited for until it has imported its libraries; the
        submission's own time (:attr:`sent_at`) starts when it is handed the job."""
        stall = stall_seconds() if stall is None else stall
        fresh = self.process is None or self.process.poll() is not None
        process = self._start()
        self.sent_at = time.monotonic()
        if fresh:
            started = self._await(timeout, stall, until_ready=True)
            if started is not None:
                return started
        request = {"course": str(course), "assignment": job.assignment, "student": job.student}
        self.sent_at = time.monotonic()
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except OSError:
            self.stop()
            return GraderFault("the grading worker could not be started")
        return self._await(timeout, stall)

    def _await(self, timeout: float, stall: float,
               until_ready: bool = False) -> dict | GraderFault | str | None:
        """Read the worker's pipe until its report (or, ``until_ready``, until it is ready for
        a job: ``None``), watching its progress."""
        process = self.process
        now = time.monotonic()
        deadline = now + timeout
        # Progress: the worker's last beat, what it said was running, and for how long.
        phase, allowed, last = "grader", stall, now
        received = b""
        while True:
            now = time.monotonic()
            if now - last > allowed:
                self.stop()
                where = {"grader": "while none of the submission's code was running",
                         "start": "while it started",
                         "student": "after the submission's code had used up its own time "
                                    "limit"}[phase]
                return GraderFault(f"the grading worker made no progress for {now - last:.0f} "
                                   f"seconds {where}")
            remaining = deadline - now
            if remaining <= 0:
                self.stop()
                if until_ready:
                    return GraderFault(f"the grading worker did not start within {timeout:g} "
                                       "seconds")
                return f"grading did not finish within {timeout:g} seconds"
            chunk = processes.read_some(self.reports, min(deadline, last + allowed),
                                        poll=WORKER_POLL_SECONDS)
            if chunk is None:
                continue
            if not chunk:
                code = process.wait()
                self.stop()
                return GraderFault(f"the grading worker stopped (exit code {code})")
            received += chunk
            if len(received) > MAX_REPORT_BYTES:
                self.stop()
                return GraderFault("the grading worker sent an oversized report")
            while b"\n" in received:
                raw, received = received.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                progress = _parse_beat(line)
                if progress is not None:
                    phase, seconds = progress
                    last = time.monotonic()
                    allowed = stall + (min(seconds, timeout) if phase != "grader" else 0.0)
                    if until_ready and phase == "grader":
                        return None
                    continue
                report = None if until_ready else _parse_report(line)
                if report is None:
                    self.stop()
                    return GraderFault("the grading worker sent a malformed report")
                return report


@dataclass(frozen=True)
class GraderFault:
    """No result, through no fault of the submission: the grader itself got stuck or failed."""

    reason: str


def _message(line: str, prefix: str) -> dict | None:
    """The JSON object after ``prefix`` on a line of the worker's pipe; ``None`` for anything
    else."""
    if not line.startswith(prefix):
        return None
    try:
        message = json.loads(line[len(prefix):])
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _parse_beat(line: str) -> tuple[str, float] | None:
    """``LOSSLAB-BEAT {"phase": "student"|"start"|"grader", "seconds": number}``, strictly."""
    beat = _message(line, "LOSSLAB-BEAT ")
    if (beat is None or set(beat) != {"phase", "seconds"}
            or beat["phase"] not in ("student", "start", "grader")
            or type(beat["seconds"]) not in (int, float) or not 0 <= beat["seconds"] < 1e6):
        return None
    return beat["phase"], float(beat["seconds"])


def _parse_report(line: str) -> dict | None:
    """``LOSSLAB-RESULT {"autograde": bool, "feedback": bool, "error": str, "fault": str}``,
    strictly."""
    report = _message(line, "LOSSLAB-RESULT ")
    if (report is None
            or set(report) != {"autograde", "feedback", "error", "fault"}
            or not isinstance(report["autograde"], bool)
            or not isinstance(report["feedback"], bool) or not isinstance(report["error"], str)
            or report["fault"] not in ("", "submission", "grader")):
        return None
    return report


def _prepare_folder(job: Job, work: Path, notebook: Path) -> Path:
    """A fresh private course folder for one attempt at one submission."""
    folder = work / f"{job.assignment}--{job.student}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy2(work / "gradebook.db", folder / "gradebook.db")
    target = folder / "submitted" / job.student / job.assignment
    target.mkdir(parents=True)
    # Only the graded notebook is copied; other files (a 2 GB data file) are not.
    shutil.copyfile(notebook, target / f"{job.assignment}.ipynb")
    return folder


@dataclass
class Attempt:
    """What grading one submission came to, over at most two attempts."""

    status: str
    message: str
    folder: Path | None
    seconds: float = 0.0
    note: str = ""
    attempts: int = 1


def _run_worker(job: Job, work: Path, timeout: float, worker: WorkerProcess,
                stall: float | None = None) -> Attempt:
    notebook, note = choose_notebook(job.folder, job.assignment)
    if notebook is None:
        return Attempt("failed", note, None)
    if notebook.stat().st_size > MAX_NOTEBOOK_BYTES:
        return Attempt("failed", f"{notebook.name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB",
                       None, note=note)
    problem = check_notebook(notebook.read_bytes())
    if problem:
        return Attempt("failed", problem, None, note=note)
    notes = [note] if note else []
    attempts = 0
    while True:
        attempts += 1
        folder = _prepare_folder(job, work, notebook)
        result = worker.grade(folder, job, timeout, stall)
        seconds = time.monotonic() - worker.sent_at
        if isinstance(result, dict) and result["fault"] == "grader":
            failure = result["error"]
        elif isinstance(result, GraderFault):
            failure = result.reason
        else:
            failure = ""
        if failure and attempts == 1:
            # Not the submission's doing: grade it again, on a fresh worker, with its own time.
            worker.stop()
            notes.append(f"retried once on a fresh worker: in the first attempt ({seconds:.0f} s),"
                         f" {failure}")
            continue
        note = "; ".join(notes)
        if failure:
            return Attempt("failed", f"the grader itself failed, and again when the submission "
                                     f"was retried on a fresh worker: {failure}", folder,
                           seconds, note, attempts)
        if isinstance(result, str):
            return Attempt("failed", result, folder, seconds, note, attempts)
        if result["autograde"] and result["feedback"]:
            return Attempt("graded", "", folder, seconds, note, attempts)
        if result["autograde"]:
            return Attempt("graded", f"feedback failed: {result['error']}", folder, seconds,
                           note, attempts)
        return Attempt("failed", result["error"], folder, seconds, note, attempts)


def grade_all(
    jobs: list[Job],
    course: Path,
    *,
    workers: int = 0,
    timeout: float = SUBMISSION_SECONDS,
    progress=print,
    stall: float | None = None,
) -> list[Outcome]:
    """Autograde ``jobs`` in parallel into the nbgrader course folder ``course``.

    ``timeout`` bounds one attempt at one submission; ``stall`` (default
    ``LOSSLAB_STALL_SECONDS``, else ``settings.STALL_SECONDS``) how long a worker may make no
    progress before it is replaced and its submission retried once."""
    workers = workers or os.cpu_count() or 1
    stall = stall if stall is not None else stall_seconds()
    course = course.resolve()
    # Fail closed before any student code runs (IsolationUnavailable says why and what to do).
    sandbox.require()
    mode = sandbox.describe_mode()
    os.umask(0o077)
    course.mkdir(parents=True, exist_ok=True)
    course.chmod(0o700)
    prepare_gradebook(course, {job.assignment for job in jobs})
    (course / "gradebook.db").chmod(0o600)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="losslab-grade-") as tmp:
        work = Path(tmp)
        shutil.copy2(course / "gradebook.db", work / "gradebook.db")
        # IPython's folder inside the run's own: where HOME is not writable, IPython would
        # otherwise make a new temporary folder for every submission and never remove it.
        ipython = work / "ipython"
        ipython.mkdir(mode=0o700)
        idle: queue.Queue[WorkerProcess] = queue.Queue()
        for _ in range(workers):
            idle.put(WorkerProcess(env={"IPYTHONDIR": str(ipython)}, tmp_root=work))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {}
            for job in jobs:
                futures[pool.submit(_timed_worker, job, work, timeout, idle, stall)] = job
            for done, future in enumerate(as_completed(futures), start=1):
                job = futures[future]
                try:
                    attempt = future.result()
                except Exception as error:  # noqa: BLE001 - one submission never stops the run
                    attempt = Attempt("failed", f"the grader itself failed ({error!r})", None)
                status, folder = attempt.status, attempt.folder
                outcome = Outcome(job, status, attempt.seconds, attempt.message, isolation=mode,
                                  note=attempt.note, attempts=attempt.attempts)
                if status == "graded" and folder is not None:
                    try:
                        outcome.score, outcome.max_score, outcome.needs_manual_grade = (
                            merge_result(course, job, folder)
                        )
                    except Exception as error:  # noqa: BLE001
                        outcome.status, outcome.message = "failed", f"merge failed: {error!r}"
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                outcomes.append(outcome)
                progress(_progress_line(done, len(jobs), outcome, time.monotonic() - started))
        while not idle.empty():
            idle.get().stop()
    return outcomes


def _timed_worker(job: Job, work: Path, timeout: float, idle: queue.Queue,
                  stall: float | None = None) -> Attempt:
    """Grade ``job`` on an idle worker; the attempt's seconds are those of its last try (a
    submission retried after the grader stalled is not charged for the stalled try)."""
    worker = idle.get()
    try:
        return _run_worker(job, work, timeout, worker, stall)
    finally:
        idle.put(worker)


def _progress_line(done: int, total: int, outcome: Outcome, elapsed: float) -> str:
    job = outcome.job
    width = len(str(total))
    if outcome.status == "graded":
        result = f"{outcome.score:g}/{outcome.max_score:g}"
        if outcome.needs_manual_grade:
            result += " (+ manual grading)"
    else:
        result = f"FAILED: {outcome.message}"
    if outcome.note:
        result += f"  [{outcome.note}]"
    return (f"[{done:>{width}}/{total}] {elapsed:6.1f}s  {job.assignment}/{job.student}: "
            f"{result}  ({outcome.seconds:.1f}s)")


def write_log(outcomes: list[Outcome], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["assignment", "student_id", "status", "score", "max_score",
                         "needs_manual_grade", "seconds", "isolation", "message", "attempts",
                         "note"])
        for o in sorted(outcomes, key=lambda o: (o.job.assignment, o.job.student)):
            writer.writerow([o.job.assignment, o.job.student, o.status,
                             "" if o.score is None else o.score,
                             "" if o.max_score is None else o.max_score,
                             o.needs_manual_grade, f"{o.seconds:.2f}", o.isolation,
                             re.sub(r"\s+", " ", o.message)[:1000], o.attempts,
                             re.sub(r"\s+", " ", o.note)[:1000]])

