"""Grade many submissions at once: one process per submission, each in its own course folder.

nbgrader autogrades one student at a time. Here every submission is autograded by
:mod:`losslab.grading.worker` in a private copy of the course (its own ``gradebook.db``), as
many at a time as there are cores; the results are merged into one gradebook, feedback and
autograded notebooks are copied next to it, and a grades CSV is exported. A submission that
breaks its worker is reported and the run goes on. Student code runs only inside bubblewrap
(:mod:`.isolation`), started by the workers; everything this process writes is private to the
grading user (umask 077).
"""

from __future__ import annotations

import csv
import io
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

from . import isolation
from .checks import ASSIGNMENTS

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
    isolation: str = ""
    note: str = ""
    attempts: int = 1


# Caps on what one student can hand in (or make the grader copy).
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ARCHIVE_MEMBERS = 500
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
MAX_REPORT_BYTES = 1024 * 1024
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# How long a worker may go without progress while none of the submission's code runs (and
# past a running step's own limit) before it counts as stuck, is replaced, and the
# submission is graded again once on a fresh worker.
STALL_SECONDS = 120.0


def stall_seconds() -> float:
    """``LOSSLAB_STALL_SECONDS``, else :data:`STALL_SECONDS`."""
    value = os.environ.get("LOSSLAB_STALL_SECONDS")
    try:
        seconds = float(value) if value else STALL_SECONDS
    except ValueError:
        raise GradingInputError(f"LOSSLAB_STALL_SECONDS must be a number of seconds, got "
                                f"{value!r}") from None
    if not seconds > 0:
        raise GradingInputError(f"LOSSLAB_STALL_SECONDS must be positive, got {value!r}")
    return seconds


def source_folder() -> Path:
    """The instructor's sources: ``LOSSLAB_SOURCE`` (``make grade SOURCE=...``) or solutions/."""
    value = os.environ.get("LOSSLAB_SOURCE") or "solutions"
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


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
        if student.name.startswith(".") or not STUDENT_ID.match(student.name):
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


class ArchiveError(Exception):
    """One LMS download could not be used; the message says why (it fails that student only)."""


def _private_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: list[int]) -> bytes:
    """A member's bytes, counting what is really inflated (never the header's claims)."""
    if member.flag_bits & 0x1:
        raise ArchiveError(f"{member.filename!r} is encrypted")
    with archive.open(member) as handle:
        data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ArchiveError(f"{member.filename!r} is larger than "
                           f"{MAX_NOTEBOOK_BYTES >> 20} MiB uncompressed")
    if len(data) > 1024 * 1024 and len(data) > MAX_COMPRESSION_RATIO * max(member.compress_size,
                                                                          1):
        raise ArchiveError(f"{member.filename!r} is compressed more than "
                           f"{MAX_COMPRESSION_RATIO}:1 (a zip bomb?)")
    budget[0] -= len(data)
    if budget[0] < 0:
        raise ArchiveError(f"the archive unpacks to more than {MAX_ARCHIVE_BYTES >> 20} MiB")
    return data


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ArchiveError(f"it holds {len(members)} files, more than {MAX_ARCHIVE_MEMBERS}")
    return members


def _student_notebook(data: bytes, assignment: str) -> bytes:
    """The notebook in one student's own zip: the member named ``<assignment>.ipynb``, else the
    only notebook. Member names are never used as paths, nor to say whose work it is."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ArchiveError("it is not a valid zip file") from error
    with archive:
        budget = [MAX_ARCHIVE_BYTES]
        notebooks = [m for m in _members(archive) if m.filename.endswith(".ipynb")
                     and not any(part.startswith((".", "__MACOSX"))
                                 for part in m.filename.replace("\\", "/").split("/"))]
        named = [m for m in notebooks if m.filename.replace("\\", "/").rsplit("/", 1)[-1]
                 == f"{assignment}.ipynb"]
        chosen = named or notebooks
        if len(chosen) != 1:
            raise ArchiveError(f"expected one notebook ({assignment}.ipynb) in the zip, found "
                               f"{len(notebooks)}")
        return _read_member(archive, chosen[0], budget)


def collect_zips(downloads: Path, assignment: str, course: Path,
                 regexp: str) -> tuple[Path, list[tuple[str, str]]]:
    """Turn an LMS download (zip files and/or notebooks) into ``course/submitted/``.

    Whose work a file is comes from the name the LMS gave it (``regexp``, group
    ``student_id``): a notebook or zip in ``downloads``, or a member of the LMS's own bulk zip.
    A student's own zip is opened one level deep and only its notebook is taken. Nothing is
    extracted with ``extractall``: files are written by this process, mode 0600, under names it
    makes. Returns the submitted folder and ``(student or file name, reason)`` for every
    download that could not be used; each of those fails alone.
    """
    if not downloads.is_dir():
        raise GradingInputError(f"expected a folder of LMS downloads, got {downloads}")
    archives = sorted(p for p in downloads.iterdir() if p.suffix in (".zip", ".ipynb"))
    if not archives:
        raise GradingInputError(
            f"expected .zip or .ipynb files in {downloads}; it holds {_listing(downloads)}"
        )
    try:
        pattern = re.compile(regexp)
    except re.error as error:
        raise GradingInputError(f"--zip-regexp {regexp!r} is not a regular expression: {error}")
    submitted = course / "submitted"
    submitted.mkdir(parents=True, exist_ok=True, mode=0o700)
    rejected: list[tuple[str, str]] = []
    found: dict[str, bytes] = {}

    def student_of(name: str) -> str | None:
        match = pattern.match(name[:-4] + ".ipynb" if name.endswith(".zip") else name)
        student = match.groupdict().get("student_id") if match else None
        return student if student and STUDENT_ID.match(student) else None

    def take(name: str, read) -> None:
        student = student_of(name)
        if student is None:
            rejected.append((f"?{name}", f"the file name {name!r} does not match {regexp!r}, "
                                         "so it is not known whose work it is"))
            return
        try:
            data = read()
            if name.endswith(".zip"):
                data = _student_notebook(data, assignment)
            found[student] = data
            rejected[:] = [(s, r) for s, r in rejected if s != student]
        except (ArchiveError, OSError, zipfile.BadZipFile, RuntimeError, EOFError,
                ValueError) as error:
            rejected.append((student, f"{name}: {error}"))

    for path in archives:
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            rejected.append((student_of(path.name) or f"?{path.name}",
                             f"{path.name} is larger than {MAX_ARCHIVE_BYTES >> 20} MiB"))
            continue
        if path.suffix == ".ipynb" or student_of(path.name) is not None:
            take(path.name, lambda path=path: _read_capped(path))
            continue
        # The LMS's own bulk download: its member names are the LMS's, one per student.
        try:
            with zipfile.ZipFile(path) as bulk:
                budget = [MAX_ARCHIVE_BYTES * 4]
                for member in _members(bulk):
                    name = member.filename.replace("\\", "/").rsplit("/", 1)[-1]
                    if name.endswith((".ipynb", ".zip")) and not name.startswith("."):
                        take(name, lambda m=member: _read_member(bulk, m, budget))
        except (ArchiveError, zipfile.BadZipFile, OSError) as error:
            rejected.append((f"?{path.name}", f"{path.name}: {error}"))
    for student, data in sorted(found.items()):
        _private_write(submitted / student / assignment / f"{assignment}.ipynb", data)
    return submitted, rejected


def _read_capped(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_ARCHIVE_BYTES + 1)
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveError(f"it is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
    return data


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
    config.CourseDirectory.source_directory = "solutions"
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
    source = source_folder()
    with tempfile.TemporaryDirectory(prefix="losslab-source-") as tmp:
        for name in missing:
            if not (source / name / f"{name}.ipynb").is_file():
                raise GradingInputError(
                    f"expected the source notebook {source / name / f'{name}.ipynb'} "
                    "(SOURCE=... / LOSSLAB_SOURCE names the folder of instructor sources)")
            shutil.copytree(source / name, Path(tmp) / "solutions" / name)
            result = _api(course, source_root=Path(tmp)).generate_assignment(name, force=True)
            if not result.get("success"):
                raise RuntimeError(f"could not register {name} in the gradebook:\n"
                                   f"{result.get('error') or result.get('log')}")


class WorkerProcess:
    """A long-lived ``losslab.grading.worker --serve FD`` process; restarted when it fails.

    Student code never runs in it (only in the bubblewrapped kernels and sandboxes it starts),
    so one worker can grade submission after submission. Its reports come over a pipe of their
    own that no student process inherits; its stdout and stderr go to /dev/null.
    """

    def __init__(self, command: list[str] | None = None, env: dict | None = None) -> None:
        # The worker's command line, before ``--serve FD``, and what it adds to the environment.
        self.command = command or [sys.executable, "-m", "losslab.grading.worker"]
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.reports: int | None = None
        # When the current job was handed over: the submission's own time starts there.
        self.sent_at = time.monotonic()

    def _start(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            self.stop()
            read_fd, write_fd = os.pipe()
            try:
                self.process = subprocess.Popen(
                    [*self.command, "--serve", str(write_fd)],
                    cwd=REPO_ROOT, env={**_child_env(), **self.env}, stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                    start_new_session=True, bufsize=1, pass_fds=(write_fd,),
                )
            finally:
                os.close(write_fd)
            self.reports = read_fd
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            self.process = None
        if self.reports is not None:
            os.close(self.reports)
            self.reports = None

    def grade(self, course: Path, job: Job, timeout: float,
              stall: float = STALL_SECONDS) -> dict | GraderFault | str:
        """The worker's result dict; a :class:`GraderFault` when the worker made no progress for
        ``stall`` seconds beyond what the running step may take, died, or sent what it never
        sends (student code never runs in it, so none of this is the submission's doing);
        else the string saying the submission used up its own time.

        A fresh worker is first waited for until it has imported its libraries; the
        submission's own time (:attr:`sent_at`) starts when it is handed the job."""
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
            wait = min(remaining, last + allowed - now, 5.0)
            ready, _, _ = select.select([self.reports], [], [], max(wait, 0.0))
            if not ready:
                continue
            chunk = os.read(self.reports, 65536)
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


def _parse_beat(line: str) -> tuple[str, float] | None:
    """``LOSSLAB-BEAT {"phase": "student"|"start"|"grader", "seconds": number}``, strictly."""
    if not line.startswith("LOSSLAB-BEAT "):
        return None
    try:
        beat = json.loads(line.split(" ", 1)[1])
    except ValueError:
        return None
    if (not isinstance(beat, dict) or set(beat) != {"phase", "seconds"}
            or beat["phase"] not in ("student", "start", "grader")
            or type(beat["seconds"]) not in (int, float) or not 0 <= beat["seconds"] < 1e6):
        return None
    return beat["phase"], float(beat["seconds"])


def _parse_report(line: str) -> dict | None:
    """``LOSSLAB-RESULT {"autograde": bool, "feedback": bool, "error": str, "fault": str}``,
    strictly."""
    if not line.startswith("LOSSLAB-RESULT "):
        return None
    try:
        report = json.loads(line.split(" ", 1)[1])
    except ValueError:
        return None
    if (not isinstance(report, dict)
            or set(report) != {"autograde", "feedback", "error", "fault"}
            or not isinstance(report["autograde"], bool)
            or not isinstance(report["feedback"], bool) or not isinstance(report["error"], str)
            or report["fault"] not in ("", "submission", "grader")):
        return None
    return report


# What browsers and Jupyter add to a second copy of a file: "focal_loss (1).ipynb",
# "focal_loss(2).ipynb", "focal_loss-1.ipynb", "focal_loss_1.ipynb", "focal_loss-Copy1.ipynb".
COPY_SUFFIX = r"(?: ?\(\d{1,3}\)|[-_]\d{1,3}|-[Cc]opy\d{0,3}| [Cc]opy(?: \d{1,3})?)"


def choose_notebook(folder: Path, assignment: str) -> tuple[Path | None, str]:
    """The notebook to grade in a student's folder, and a note (or, with no notebook, the
    reason): ``<assignment>.ipynb``; else the one copy of it under a browser's copy name;
    else the only notebook in the folder."""
    notebooks = sorted(p for p in folder.glob("*.ipynb")
                       if p.is_file() and not p.is_symlink() and not p.name.startswith("."))
    expected = f"{assignment}.ipynb"
    names = ", ".join(p.name for p in notebooks[:8]) + (", ..." if len(notebooks) > 8 else "")
    others = f"; also handed in, not graded: {names}" if len(notebooks) > 1 else ""
    exact = [p for p in notebooks if p.name == expected]
    if exact:
        rest = [p.name for p in notebooks if p.name != expected]
        return exact[0], (f"also handed in, not graded: {', '.join(rest[:8])}" if rest else "")
    if not notebooks:
        return None, f"no notebook in {folder} (expected {expected})"
    copies = [p for p in notebooks
              if re.fullmatch(re.escape(assignment) + COPY_SUFFIX + r"\.ipynb", p.name)]
    if len(copies) == 1:
        return copies[0], f"graded {copies[0].name} as {expected} (a copy's name){others}"
    if len(notebooks) == 1:
        return notebooks[0], (f"graded {notebooks[0].name}, the only notebook in the folder, "
                              f"as {expected}")
    return None, (f"expected {expected} (or one copy of it, such as '{assignment} (1).ipynb'); "
                  f"found {len(notebooks)} notebooks: {names}")


def check_notebook(data: bytes) -> str:
    """Empty when ``data`` is a notebook file nbgrader can read; else what is wrong with it,
    in words an instructor can act on."""
    import nbformat

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"the notebook is not UTF-8 text (byte {error.start} is not)"
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return (f"the notebook is not valid JSON at line {error.lineno}, column {error.colno} "
                f"({error.msg})")
    except RecursionError:
        return "the notebook is not valid JSON (it nests too deeply)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - whatever nbformat says about the file
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"the file is not a Jupyter notebook nbformat can read ({first[:200]})"
    return ""


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
                stall: float = STALL_SECONDS) -> Attempt:
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


def merge_result(course: Path, job: Job, folder: Path) -> tuple[float, float, bool]:
    """Copy one worker's grades into the course gradebook, and its files into the course."""
    from nbgrader.api import Gradebook, MissingEntry

    for kind in ("autograded", "feedback", "submitted"):
        source = folder / kind / job.student / job.assignment
        target = course / kind / job.student / job.assignment
        if not source.is_dir() or (kind == "submitted" and target.resolve() ==
                                   job.folder.resolve()):
            continue
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True, mode=0o700)
        for path in source.iterdir():
            # Notebooks and feedback pages only, of bounded size; never links.
            if (path.suffix in (".ipynb", ".html") and path.is_file() and not path.is_symlink()
                    and path.stat().st_size <= 4 * MAX_NOTEBOOK_BYTES):
                shutil.copyfile(path, target / path.name)

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
    stall: float | None = None,
) -> list[Outcome]:
    """Autograde ``jobs`` in parallel into the nbgrader course folder ``course``.

    ``timeout`` bounds one attempt at one submission; ``stall`` (default
    ``LOSSLAB_STALL_SECONDS`` or :data:`STALL_SECONDS`) how long a worker may make no progress
    before it is replaced and its submission retried once."""
    workers = workers or os.cpu_count() or 1
    stall = stall if stall is not None else stall_seconds()
    course = course.resolve()
    # Fail closed before any student code runs (IsolationUnavailable says why and what to do).
    isolation.require()
    mode = isolation.describe_mode()
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
            idle.put(WorkerProcess(env={"IPYTHONDIR": str(ipython)}))
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
                  stall: float = STALL_SECONDS) -> Attempt:
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
