"""Autograde one submission in its own course folder: ``python -m losslab.grading.worker``.

The parallel grader keeps one worker per core (``--serve FD``) and hands each a submission at
a time on stdin; by hand::

    python -m losslab.grading.worker COURSE_DIR ASSIGNMENT STUDENT

``COURSE_DIR`` holds ``gradebook.db`` (with the assignment's source cells) and
``submitted/STUDENT/ASSIGNMENT/``. The worker autogrades, writes feedback, and reports one JSON
line: ``{"autograde": bool, "feedback": bool, "error": str}``. With ``--serve FD`` the reports
go to the pipe ``FD``, which only the grader reads; the worker's own stdout and stderr (and
so anything a kernel could reach) go to /dev/null. Student code never runs in this process:
kernels and sandboxes are started inside bubblewrap without this pipe.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path


def grade_one(course_dir: Path, assignment: str, student: str) -> dict:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from .checks import checks_for
    from .config import configure

    # The judge is loaded before any student code runs.
    checks_for(assignment)

    config = Config()
    configure(config)
    config.CourseDirectory.root = str(course_dir)
    config.CourseDirectory.db_url = f"sqlite:///{course_dir / 'gradebook.db'}"
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    result = {"autograde": False, "feedback": False, "error": ""}
    autograde = api.autograde(assignment, student, force=True, create=True)
    result["autograde"] = bool(autograde.get("success"))
    if not result["autograde"]:
        result["error"] = _last_line(autograde.get("error") or autograde.get("log") or "")
        return result
    feedback = api.generate_feedback(assignment, student, force=True)
    result["feedback"] = bool(feedback.get("success"))
    if not result["feedback"]:
        result["error"] = _last_line(feedback.get("error") or feedback.get("log") or "")
    return result


def _last_line(text: str) -> str:
    """The most telling line of nbgrader's log: its first real exception, else the last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if re.match(r"^[\w.]*(Error|Exception)\b.*:", line) and "Please see the" not in line:
            return line[:500]
    return lines[-1][:500] if lines else "unknown error"


def serve(fd: int) -> int:
    """Grade one job per line of stdin (``{"course", "assignment", "student"}``), reporting
    each on the pipe ``fd``; imports are paid once per worker instead of once per submission."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            result = grade_one(Path(job["course"]).resolve(), job["assignment"], job["student"])
        except Exception as error:  # noqa: BLE001 - report it and take the next job
            result = {"autograde": False, "feedback": False, "error": repr(error)[:500]}
        data = ("LOSSLAB-RESULT " + json.dumps(result) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--serve":
        return serve(int(argv[1]))
    if len(argv) != 3:
        print("usage: python -m losslab.grading.worker COURSE_DIR ASSIGNMENT STUDENT\n"
              "       python -m losslab.grading.worker --serve FD", file=sys.stderr)
        return 2
    result = grade_one(Path(argv[0]).resolve(), argv[1], argv[2])
    print("LOSSLAB-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
