"""Autograde one submission in its own course folder: ``python -m losslab.grading.worker``.

The parallel grader keeps one worker per core (``--serve``) and hands each a submission at a
time; by hand::

    python -m losslab.grading.worker COURSE_DIR ASSIGNMENT STUDENT

``COURSE_DIR`` holds ``gradebook.db`` (with the assignment's source cells) and
``submitted/STUDENT/ASSIGNMENT/``. The worker autogrades, writes feedback, and prints one JSON
line: ``{"autograde": bool, "feedback": bool, "error": str}``.
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
    from .privileges import fingerprint

    # The judge is loaded before any student code runs, and the grading code must be the
    # code the run started with (student code could try to rewrite it).
    expected = os.environ.get("LOSSLAB_GRADING_FINGERPRINT")
    checks_for(assignment)
    tampered = {"autograde": False, "feedback": False,
                "error": "the grading code changed during the run; restore it and grade again"}
    if expected and fingerprint() != expected:
        return tampered

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
    if expected and fingerprint() != expected:
        return tampered
    return result


def _last_line(text: str) -> str:
    """The most telling line of nbgrader's log: its first real exception, else the last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if re.match(r"^[\w.]*(Error|Exception)\b.*:", line) and "Please see the" not in line:
            return line[:500]
    return lines[-1][:500] if lines else "unknown error"


def serve() -> int:
    """Grade one job per line of stdin (``{"course", "assignment", "student"}``), reporting
    each on stdout; imports are paid once per worker instead of once per submission."""
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            result = grade_one(Path(job["course"]).resolve(), job["assignment"], job["student"])
        except Exception as error:  # noqa: BLE001 - report it and take the next job
            result = {"autograde": False, "feedback": False, "error": repr(error)[:500]}
        print("LOSSLAB-RESULT " + json.dumps(result), flush=True)
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--serve"]:
        return serve()
    if len(argv) != 3:
        print("usage: python -m losslab.grading.worker COURSE_DIR ASSIGNMENT STUDENT\n"
              "       python -m losslab.grading.worker --serve", file=sys.stderr)
        return 2
    result = grade_one(Path(argv[0]).resolve(), argv[1], argv[2])
    print("LOSSLAB-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
