"""Grade many submissions at once: one process per submission, each in its own course folder.

nbgrader autogrades one student at a time. Here every submission is autograded by
:mod:`losslab.grading.worker` in a private copy of the course (its own ``gradebook.db``), as
many at a time as there are cores; the results are merged into one gradebook, feedback and
autograded notebooks are copied next to it, and a grades CSV is exported. A submission that
breaks its worker is reported and the run goes on.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .checks import ASSIGNMENTS
from .privileges import fingerprint

REPO_ROOT = Path(__file__).resolve().parents[2]
# Canvas-style download names: <student>_[LATE_]<numbers>_<original name>.ipynb
DEFAULT_ZIP_REGEXP = (
    r"(?:.*/)?(?P<student_id>[A-Za-z0-9.-]+)_(?:LATE_)?(?:\d+_)*"
    r"(?P<file_id>[A-Za-z_]+)(?:-\d+)?\.ipynb$"
)


class GradingInputError(Exception):
    """The submissions are not where or what the grader expects; the message says both."""


@dataclass(frozen=True)
class Job:
    student: str
    assignment: str
    folder: Path


@dataclass
class Outcome:
    job: Job
    status: str
    seconds: float
    message: str = ""
    score: float | None = None
    max_score: float | None = None
    needs_manual_grade: bool = False


def _listing(folder: Path, limit: int = 8) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "an empty folder"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def find_submissions(folder: Path, assignment: str | None = None) -> list[Job]:
    """Submissions laid out as nbgrader's ``submitted/<student>/<assignment>/*.ipynb``."""
    if not folder.exists():
        raise GradingInputError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise GradingInputError(
            f"expected a folder of submissions (<student>/<assignment>/<notebook>.ipynb), "
            f"got a file: {folder}"
        )
    if assignment is not None and assignment not in ASSIGNMENTS:
        raise GradingInputError(
            f"unknown assignment {assignment!r}; expected one of {', '.join(ASSIGNMENTS)}"
        )
    wanted = (assignment,) if assignment else ASSIGNMENTS
    jobs = []
    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        if student.name.startswith("."):
            continue
        for name in wanted:
            if (student / name).is_dir():
                jobs.append(Job(student.name, name, student / name))
    if not jobs:
        looked_for = assignment or "one of " + ", ".join(ASSIGNMENTS)
        raise GradingInputError(
            f"found no submissions in {folder}: expected <student>/<assignment>/ folders with "
            f"<assignment> {looked_for}; the folder holds {_listing(folder)}"
        )
    return jobs


def collect_zips(downloads: Path, assignment: str, course: Path, regexp: str) -> Path:
    """Turn an LMS download (zip files and/or notebooks) into ``course/submitted/`` with
    ``nbgrader zip_collect``; returns the submitted folder."""
    if not downloads.is_dir():
        raise GradingInputError(f"expected a folder of LMS downloads, got {downloads}")
    archives = [p for p in downloads.iterdir() if p.suffix in (".zip", ".ipynb")]
    if not archives:
        raise GradingInputError(
            f"expected .zip or .ipynb files in {downloads}; it holds {_listing(downloads)}"
        )
    for archive in archives:
        if archive.suffix == ".zip" and not zipfile.is_zipfile(archive):
            raise GradingInputError(f"{archive} is not a valid zip file")
    target = course / "downloaded" / assignment / "archive"
    target.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        shutil.copy2(archive, target / archive.name)
    command = [
        sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
        f"--CourseDirectory.root={course}",
        f"--FileNameCollectorPlugin.named_regexp={regexp}",
    ]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                         env=_child_env())
    submitted = course / "submitted"
    if run.returncode != 0 or not submitted.is_dir():
        tail = "\n".join(run.stderr.strip().splitlines()[-5:])
        raise GradingInputError(
            f"nbgrader zip_collect could not collect {downloads} (file names are matched "
            f"with {regexp!r}; pass --zip-regexp to change it):\n{tail}"
        )
    return submitted


def _child_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part
    )
    # Parallel workers each get one thread: the cores are shared out by process.
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    env["MPLBACKEND"] = "Agg"
    return env


def _api(course: Path, source_root: Path | None = None):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from .config import configure

    config = Config()
    configure(config)
    config.CourseDirectory.root = str(source_root or course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def prepare_gradebook(course: Path, assignments: set[str]) -> None:
    """Make sure ``course/gradebook.db`` knows each assignment's source cells."""
    from nbgrader.api import Gradebook, MissingEntry

    course.mkdir(parents=True, exist_ok=True)
    missing = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for name in sorted(assignments):
            try:
                if gradebook.find_assignment(name).notebooks:
                    continue
            except MissingEntry:
                pass
            missing.append(name)
    if not missing:
        return
    with tempfile.TemporaryDirectory(prefix="losslab-source-") as tmp:
        for name in missing:
            shutil.copytree(REPO_ROOT / "solutions" / name, Path(tmp) / "solutions" / name)
            result = _api(course, source_root=Path(tmp)).generate_assignment(name, force=True)
            if not result.get("success"):
                raise RuntimeError(f"could not register {name} in the gradebook:\n"
                                   f"{result.get('error') or result.get('log')}")


class WorkerProcess:
    """A long-lived ``losslab.grading.worker --serve`` process; restarted when it fails.

    Student code never runs in it (only in the kernels and sandboxes it starts), so one
    worker can grade submission after submission.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "losslab.grading.worker", "--serve"],
                cwd=REPO_ROOT, env=_child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, start_new_session=True, bufsize=1,
            )
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None

    def grade(self, course: Path, job: Job, timeout: float) -> dict | str:
        """The worker's result dict, or a string saying why there is none."""
        process = self._start()
        request = {"course": str(course), "assignment": job.assignment, "student": job.student}
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except OSError:
            self.stop()
            return "the grading worker could not be started"
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                return f"grading did not finish within {timeout:g} seconds"
            ready, _, _ = select.select([process.stdout], [], [], remaining)
            if not ready:
                continue
            line = process.stdout.readline()
            if not line:
                code = process.wait()
                self.stop()
                return f"the grading worker stopped (exit code {code})"
            if line.startswith("LOSSLAB-RESULT "):
                return json.loads(line.split(" ", 1)[1])


def _run_worker(job: Job, work: Path, timeout: float,
                worker: WorkerProcess) -> tuple[str, str, Path]:
    folder = work / f"{job.assignment}--{job.student}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(work / "gradebook.db", folder / "gradebook.db")
    target = folder / "submitted" / job.student / job.assignment
    shutil.copytree(job.folder, target, dirs_exist_ok=True)
    result = worker.grade(folder, job, timeout)
    if isinstance(result, str):
        return "failed", result, folder
    if result["autograde"] and result["feedback"]:
        return "graded", "", folder
    if result["autograde"]:
        return "graded", f"feedback failed: {result['error']}", folder
    return "failed", result["error"], folder


def merge_result(course: Path, job: Job, folder: Path) -> tuple[float, float, bool]:
    """Copy one worker's grades into the course gradebook, and its files into the course."""
    from nbgrader.api import Gradebook, MissingEntry

    for kind in ("autograded", "feedback"):
        source = folder / kind / job.student / job.assignment
        if source.is_dir():
            target = course / kind / job.student / job.assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target)
    submitted = course / "submitted" / job.student / job.assignment
    if submitted.resolve() != job.folder.resolve():
        if submitted.exists():
            shutil.rmtree(submitted)
        shutil.copytree(job.folder, submitted)

    with warnings.catch_warnings(), \
            Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as worker, \
            Gradebook(f"sqlite:///{course / 'gradebook.db'}") as master:
        # nbgrader's own session handling warns about objects it adds itself.
        warnings.simplefilter("ignore")
        done = worker.find_submission(job.assignment, job.student)
        student = worker.find_student(job.student)
        master.update_or_create_student(
            job.student, first_name=student.first_name, last_name=student.last_name,
            email=student.email,
        )
        try:
            master.find_submission(job.assignment, job.student)
        except MissingEntry:
            master.add_submission(job.assignment, job.student)
        target = master.find_submission(job.assignment, job.student)
        target.timestamp = done.timestamp
        for notebook in done.notebooks:
            for grade in notebook.grades:
                into = master.find_grade(grade.name, notebook.name, job.assignment, job.student)
                into.auto_score = grade.auto_score
                into.needs_manual_grade = grade.needs_manual_grade
            for comment in notebook.comments:
                into = master.find_comment(comment.name, notebook.name, job.assignment,
                                           job.student)
                into.auto_comment = comment.auto_comment
            into_notebook = master.find_submission_notebook(notebook.name, job.assignment,
                                                            job.student)
            into_notebook.late_submission_penalty = notebook.late_submission_penalty
        master.db.commit()
        merged = master.find_submission(job.assignment, job.student)
        return float(merged.score), float(merged.max_score), bool(merged.needs_manual_grade)


def export_csv(course: Path, path: Path) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        CsvExportPlugin(to=str(path)).export(gradebook)


def grade_all(
    jobs: list[Job],
    course: Path,
    *,
    workers: int = 0,
    timeout: float = 900.0,
    progress=print,
) -> list[Outcome]:
    """Autograde ``jobs`` in parallel into the nbgrader course folder ``course``."""
    workers = workers or os.cpu_count() or 1
    course = course.resolve()
    os.environ["LOSSLAB_GRADING_FINGERPRINT"] = fingerprint()
    prepare_gradebook(course, {job.assignment for job in jobs})
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="losslab-grade-") as tmp:
        work = Path(tmp)
        shutil.copy2(course / "gradebook.db", work / "gradebook.db")
        idle: queue.Queue[WorkerProcess] = queue.Queue()
        for _ in range(workers):
            idle.put(WorkerProcess())
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {}
            for job in jobs:
                futures[pool.submit(_timed_worker, job, work, timeout, idle)] = job
            for done, future in enumerate(as_completed(futures), start=1):
                job = futures[future]
                try:
                    status, message, folder, seconds = future.result()
                except Exception as error:  # noqa: BLE001 - one submission never stops the run
                    status, message, folder, seconds = "failed", repr(error), None, 0.0
                outcome = Outcome(job, status, seconds, message)
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


def _timed_worker(job: Job, work: Path, timeout: float, idle: queue.Queue):
    start = time.monotonic()
    worker = idle.get()
    try:
        status, message, folder = _run_worker(job, work, timeout, worker)
    finally:
        idle.put(worker)
    return status, message, folder, time.monotonic() - start


def _progress_line(done: int, total: int, outcome: Outcome, elapsed: float) -> str:
    job = outcome.job
    width = len(str(total))
    if outcome.status == "graded":
        result = f"{outcome.score:g}/{outcome.max_score:g}"
        if outcome.needs_manual_grade:
            result += " (+ manual grading)"
    else:
        result = f"FAILED: {outcome.message}"
    return (f"[{done:>{width}}/{total}] {elapsed:6.1f}s  {job.assignment}/{job.student}: "
            f"{result}  ({outcome.seconds:.1f}s)")


def write_log(outcomes: list[Outcome], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["assignment", "student_id", "status", "score", "max_score",
                         "needs_manual_grade", "seconds", "message"])
        for o in sorted(outcomes, key=lambda o: (o.job.assignment, o.job.student)):
            writer.writerow([o.job.assignment, o.job.student, o.status,
                             "" if o.score is None else o.score,
                             "" if o.max_score is None else o.max_score,
                             o.needs_manual_grade, f"{o.seconds:.2f}",
                             re.sub(r"\s+", " ", o.message)])
