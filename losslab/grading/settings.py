"""Every limit, time and environment variable of the grader, and the course's nbgrader settings.

Numbers are written here once; ``LOSSLAB_*`` variables are read when a value is used (by the
functions below), never at import, so a test or ``make grade`` can set them at any time.
:func:`configure` applies the course settings to nbgrader (``nbgrader_config.py`` and the
parallel grader share it).

Environment variables:

- ``LOSSLAB_SOURCE``: the instructor's sources (``make grade SOURCE=...``), default solutions/;
- ``LOSSLAB_ISOLATION``: ``bwrap`` (the default) or ``none`` (``--unsafe-no-isolation``);
- ``LOSSLAB_CELL_TIMEOUT``: seconds a notebook cell may run when graded (default: Validate's);
- ``LOSSLAB_SANDBOX_MEMORY_MB``: the probe sandbox's memory limit;
- ``LOSSLAB_SANDBOX_STEP_SECONDS``: seconds a graded test cell may take (tests shorten it);
- ``LOSSLAB_STALL_SECONDS``: how long a worker may make no progress before it is replaced;
- ``LOSSLAB_GRADING_SEED``: the seed of the hidden cases (default: a fresh random one);
- ``LOSSLAB_AUTOGRADE``: set to 1 for student code being graded (``support.hidden_check``
  then does nothing).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COURSE_ID = "loss-functions-live"

# -- environment variables ------------------------------------------------------------------
SOURCE_ENV = "LOSSLAB_SOURCE"
ISOLATION_ENV = "LOSSLAB_ISOLATION"
CELL_TIMEOUT_ENV = "LOSSLAB_CELL_TIMEOUT"
SANDBOX_MEMORY_ENV = "LOSSLAB_SANDBOX_MEMORY_MB"
STEP_SECONDS_ENV = "LOSSLAB_SANDBOX_STEP_SECONDS"
STALL_SECONDS_ENV = "LOSSLAB_STALL_SECONDS"
SEED_ENV = "LOSSLAB_GRADING_SEED"
AUTOGRADE_ENV = "LOSSLAB_AUTOGRADE"
ISOLATED = "bwrap"
UNSAFE = "none"

# -- times, in seconds ----------------------------------------------------------------------
# How long one message to a kernel may wait to be sent.
KERNEL_SEND_SECONDS = 10
# Students' own Validate and instructors' runs: no cell may take longer than this.
VALIDATE_TIMEOUT = 60
# One submission's whole time in its worker (`python -m losslab.grading grade --timeout`).
SUBMISSION_SECONDS = 900.0
# CPU time of one student process (kernel or probe sandbox), and everything it starts: at
# most the whole submission's time.
CPU_SECONDS = int(SUBMISSION_SECONDS)
# How long a worker may go without progress while none of the submission's code runs (and
# past a running step's own limit) before it counts as stuck, is replaced, and the
# submission is graded again once on a fresh worker.
STALL_SECONDS = 120.0
# Beyond a student step's own limit, how long the grader may take to notice that it ended.
STUDENT_SLACK_SECONDS = 30.0
# How long a probe sandbox may take to start and import its libraries.
SANDBOX_STARTUP_SECONDS = 60.0
# How long the sandbox's self-test (start Python inside it once) may take.
SELF_TEST_SECONDS = 120.0
# What a fresh worker may take to import nbgrader, torch and the checks before its first job.
WORKER_IMPORT_SECONDS = 300.0
# The judge's own clock on checking the shape of one record.
MAX_VALIDATION_SECONDS = 5.0
# How long a sandbox may take to show its own root to the host (its kernel's sockets are there).
SANDBOX_ROOT_SECONDS = 30.0
# How long a probe sandbox that has answered may take to exit before it is killed.
EXIT_GRACE_SECONDS = 5.0
# How long a killed kernel may take to be reaped before the grader says so and moves on.
REAP_SECONDS = 10.0
# How often the grader looks at a silent worker's clocks.
WORKER_POLL_SECONDS = 5.0

# -- sizes ----------------------------------------------------------------------------------
SANDBOX_MEMORY_MB = 3072
KERNEL_MEMORY_MB = 4096
FILE_MB = 256
TMP_MB = 256
# Files (inodes) per tmpfs: each pins kernel memory that no other limit counts.
TMP_FILES = 16384
PROCESSES = 256
KERNEL_MESSAGE_MB = 32
# Address space a CPU torch process reserves beyond what it touches (RLIMIT_AS = memory + this).
ADDRESS_SLACK_MB = 1536
# Output kept per notebook cell; the rest is dropped with a note.
MAX_OUTPUT_BYTES = 256 * 1024
# Caps on what one student can hand in (or make the grader copy).
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ARCHIVE_MEMBERS = 500
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
# Members smaller than this are never called zip bombs, however well they compress.
MIN_BOMB_BYTES = 1024 * 1024
# What a worker or a sandbox may send back.
MAX_REPORT_BYTES = 1024 * 1024
MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_RECORD_NODES = 100_000
MAX_RECORD_ELEMENTS = 16_000_000


class GradingInputError(Exception):
    """The submissions (or the grader's settings) are not what the grader expects; the message
    says both."""


def _number(name: str, default: float, kind=float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise GradingInputError(f"{name} must be a number, got {value!r}") from None
    if not number > 0:
        raise GradingInputError(f"{name} must be positive, got {value!r}")
    return number


def source_folder() -> Path:
    """The instructor's sources: ``LOSSLAB_SOURCE`` (``make grade SOURCE=...``) or solutions/."""
    path = Path(os.environ.get(SOURCE_ENV) or "solutions")
    return path if path.is_absolute() else REPO_ROOT / path


def isolation_mode() -> str:
    """``LOSSLAB_ISOLATION``: ``"bwrap"`` (the default) or ``"none"`` (unsafe, by name only)."""
    return os.environ.get(ISOLATION_ENV, ISOLATED)


def cell_seconds() -> float:
    """A notebook cell may take as long when graded as Validate lets it (``Execute.timeout``)."""
    return _number(CELL_TIMEOUT_ENV, float(VALIDATE_TIMEOUT))


def step_seconds() -> float:
    """A graded test cell gets as long as Validate gives the same cell (it runs the same calls
    there); ``LOSSLAB_SANDBOX_STEP_SECONDS`` shortens it, for tests only."""
    return _number(STEP_SECONDS_ENV, cell_seconds())


def sandbox_memory_mb() -> int:
    return int(_number(SANDBOX_MEMORY_ENV, SANDBOX_MEMORY_MB, int))


def stall_seconds() -> float:
    """``LOSSLAB_STALL_SECONDS``, else :data:`STALL_SECONDS`."""
    return _number(STALL_SECONDS_ENV, STALL_SECONDS)


def autograding() -> bool:
    """Whether this process is student code being graded (``LOSSLAB_AUTOGRADE=1``)."""
    return os.environ.get(AUTOGRADE_ENV) == "1"


def grading_seed() -> int | None:
    """``LOSSLAB_GRADING_SEED`` when set (reproducible hidden cases), else ``None``."""
    value = os.environ.get(SEED_ENV)
    return int(value) if value else None


@dataclass(frozen=True)
class Limits:
    """Limits of one isolated process (a kernel or a probe sandbox) and everything it starts:
    memory, time per notebook cell and per check, CPU, files and processes."""

    memory_mb: int = field(default_factory=sandbox_memory_mb)
    step_seconds: float = field(default_factory=step_seconds)
    cell_seconds: float = field(default_factory=cell_seconds)
    startup_seconds: float = SANDBOX_STARTUP_SECONDS
    cpu_seconds: int = CPU_SECONDS
    file_mb: int = FILE_MB
    processes: int = PROCESSES
    tmp_mb: int = TMP_MB
    tmp_files: int = TMP_FILES


def configure(c) -> None:
    """Apply the course settings to a traitlets ``Config`` ``c``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .feedback import InertFeedbackExporter, SanitizeFeedback
    from .judge import JudgeTestCells
    from .kernel import RestoreMissingCells, RobustExecute

    c.CourseDirectory.course_id = COURSE_ID
    # The instructor's sources (solutions and hidden tests); LOSSLAB_SOURCE (make grade
    # SOURCE=...) points at a private copy when grading for credit: solutions/ is public.
    c.CourseDirectory.source_directory = os.environ.get(SOURCE_ENV) or "solutions"
    c.CourseDirectory.release_directory = "exercises"
    c.Execute.timeout = VALIDATE_TIMEOUT
    c.ExecutePreprocessor.timeout = VALIDATE_TIMEOUT
    # Autograding gives every notebook cell as long as Validate does (in the kernel and in
    # the sandbox), so an exploration cell Validate accepts is never cut short by grading.
    # Whole seconds, at least one: nbclient reads a timeout of 0 as none at all.
    c.RobustExecute.timeout = max(1, math.ceil(cell_seconds()))
    c.OverwriteCells.add_missing_cells = False
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    c.Autograde.sanitize_preprocessors = [
        "nbgrader.preprocessors.ClearOutput",
        "nbgrader.preprocessors.DeduplicateIds",
        "nbgrader.preprocessors.OverwriteKernelspec",
        "nbgrader.preprocessors.OverwriteCells",
        RestoreMissingCells,
        CheckCellMetadata,
    ]
    c.Autograde.autograde_preprocessors = [
        RobustExecute,
        JudgeTestCells,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    # Student output reaches the feedback HTML only through nbconvert's sanitizer: no
    # scripts, no JavaScript outputs, no event handlers (the instructor opens these too).
    # Then the whole rendered page, markdown cells included, is cleaned by an allow-list
    # before it is written (losslab.grading.feedback).
    c.SanitizeHTML.safe_output_keys = ["metadata", "text/plain", "image/png", "image/jpeg",
                                       "text/html", "text/markdown"]
    c.SanitizeHTML.sanitized_output_types = ["text/html", "text/markdown"]
    c.HTMLExporter.sanitize_html = True
    c.GenerateFeedback.preprocessors = [SanitizeFeedback, SanitizeHTML, GetGrades,
                                        CSSHTMLHeaderPreprocessor]
    c.GenerateFeedback.exporter_class = InertFeedbackExporter
