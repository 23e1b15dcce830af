"""Autograde one submission in its own course folder: ``python -m losslab.grading.worker``.

The parallel grader keeps one worker per core (``--serve FD``) and hands each a submission at
a time on stdin; by hand::

    python -m losslab.grading.worker COURSE_DIR ASSIGNMENT STUDENT

``COURSE_DIR`` holds ``gradebook.db`` (with the assignment's source cells) and
``submitted/STUDENT/ASSIGNMENT/``. The worker autogrades, writes feedback, and reports one JSON
line: ``{"autograde": bool, "feedback": bool, "error": str, "fault": str}`` (``fault`` says
whose an error is: ``"submission"`` or ``"grader"``). With ``--serve FD`` the reports go to the
pipe ``FD``, which only the grader reads; the worker's own stdout and stderr (and so anything a
kernel could reach) go to /dev/null. Student code never runs in this process: kernels and
sandboxes are started inside bubblewrap without this pipe.

On the same pipe the worker says when it makes progress (:func:`.processes.beat`):
``"student"`` while a kernel or sandbox runs the submission's code, for at most the seconds it
names, ``"start"`` while it imports its libraries, and ``"grader"`` while its own code runs.
The grader replaces a worker that stays silent past that bound (see
:class:`losslab.grading.batch.WorkerProcess`).

Nothing of one submission outlives it here: every kernel's ZeroMQ sockets and contexts are
closed with zero linger when its notebook has run (:meth:`.kernel.LimitedKernelManager.
release`), any context still open afterwards is destroyed the same way, and the garbage of the
submission is collected before its report is sent, at a moment when no socket is open. (A
context collected with open sockets, or with a closed socket that still holds a message for a
kernel that is gone, blocks in ``term()`` for ever, in whatever code triggers the collection.)
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
from pathlib import Path

from .processes import beat, report_progress_to, write_all
from .settings import WORKER_IMPORT_SECONDS


def close_leftover_contexts() -> int:
    """Destroy, with zero linger, every ZeroMQ context of this process that is still open;
    returns how many there were. Run between submissions, when none should be."""
    zmq = sys.modules.get("zmq")
    if zmq is None:
        return 0
    # type(), not isinstance(): an object's __class__ may be anything, type() never runs code.
    left = [obj for obj in gc.get_objects()
            if issubclass(type(obj), zmq.Context) and not obj.closed and not obj._shadow]
    for context in left:
        context.destroy(linger=0)
    return len(left)


def grade_one(course_dir: Path, assignment: str, student: str) -> dict:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from .checks import checks_for
    from .settings import configure

    # The judge is loaded before any student code runs.
    checks_for(assignment)

    config = Config()
    configure(config)
    config.CourseDirectory.root = str(course_dir)
    config.CourseDirectory.db_url = f"sqlite:///{course_dir / 'gradebook.db'}"
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    result = {"autograde": False, "feedback": False, "error": "", "fault": ""}
    beat("grader")
    autograde = api.autograde(assignment, student, force=True, create=True)
    beat("grader")
    result["autograde"] = bool(autograde.get("success"))
    if not result["autograde"]:
        result["fault"], result["error"] = describe_failure(
            "\n".join(str(autograde.get(key) or "") for key in ("error", "log")), "autograding")
        return result
    feedback = api.generate_feedback(assignment, student, force=True)
    result["feedback"] = bool(feedback.get("success"))
    if not result["feedback"]:
        result["fault"], result["error"] = describe_failure(
            "\n".join(str(feedback.get(key) or "") for key in ("error", "log")),
            "writing the feedback")
    return result


# nbgrader's words for what is wrong with a notebook, and the instructor's.
_SUBMISSION_FAULTS = (
    (r"NotJSONError|does not appear to be JSON", "the notebook is not valid JSON"),
    (r"Duplicate grade ids?|duplicate grade_id|grade id .* is not unique",
     "two cells of the notebook have the same nbgrader grade id (a graded cell was copied)"),
    (r"Notebook failed to validate; the nbgrader metadata may be corrupted",
     "the nbgrader metadata of a graded or locked cell was edited or corrupted"),
    (r"Inconsistent checksums for cell (\S+)",
     "the graded cell {0} was changed in a way that cannot be put back"),
    (r"SchemaTooOld|SchemaTooNew|old version\s+of the nbgrader metadata",
     "the notebook's nbgrader metadata is of another nbgrader version"),
    (r"NBFormatError|ValidationError: .*(cells|nbformat)|is not valid under any of the given",
     "the file is not a valid Jupyter notebook"),
)


def describe_failure(text: str, step: str) -> tuple[str, str]:
    """``(fault, message)`` for a failed nbgrader step: what was wrong, in the instructor's
    words, and whose fault it is (``"submission"`` or ``"grader"``)."""
    for pattern, words in _SUBMISSION_FAULTS:
        match = re.search(pattern, text)
        if match:
            return "submission", words.format(*match.groups())
    return "grader", f"the grader itself failed while {step} ({_first_exception(text)})"


def _first_exception(text: str) -> str:
    """The most telling line of nbgrader's log: its first real exception, else its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if re.match(r"^[\w.]*(Error|Exception)\b.*:", line) and "Please see the" not in line:
            return line[:400]
    lines = [line for line in lines if "Please see the" not in line]
    return lines[-1][:400] if lines else "no error message"


def serve(fd: int) -> int:
    """Grade one job per line of stdin (``{"course", "assignment", "student"}``), reporting
    each on the pipe ``fd``; imports are paid once per worker instead of once per submission."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    report_progress_to(fd)
    # Alive; the imports below take a while on a busy machine.
    beat("start", WORKER_IMPORT_SECONDS)
    from nbgrader.apps import NbGraderAPI  # noqa: F401 - imported once, before any job

    from .kernel import RobustExecute  # noqa: F401
    from .settings import configure  # noqa: F401
    beat("grader")
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            result = grade_one(Path(job["course"]).resolve(), job["assignment"], job["student"])
        except Exception as error:  # noqa: BLE001 - report it and take the next job
            result = {"autograde": False, "feedback": False, "fault": "grader",
                      "error": f"the grader itself failed ({type(error).__name__}: "
                               f"{str(error)[:400]})"}
        beat("grader")
        finish_submission()
        write_all(fd, ("LOSSLAB-RESULT " + json.dumps(result) + "\n").encode())
    return 0


def finish_submission() -> None:
    """Leave nothing of the submission for the garbage collector to find later."""
    close_leftover_contexts()
    gc.collect()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--serve":
        return serve(int(argv[1]))
    if len(argv) != 3:
        print("usage: python -m losslab.grading.worker COURSE_DIR ASSIGNMENT STUDENT\n"
              "       python -m losslab.grading.worker --serve FD", file=sys.stderr)
        return 2
    result = grade_one(Path(argv[0]).resolve(), argv[1], argv[2])
    finish_submission()
    print("LOSSLAB-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
