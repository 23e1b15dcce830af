"""Fair to slow honest work, to notebooks under a browser's copy name, and to the instructor
reading the log.

- A graded test cell gets as long as Validate gives the same cell (a correct answer at 1.7 s
  per call used to pass Validate and lose a check to the grader's old 20 s), and the feedback
  says when a check ran out of time.
- ``focal_loss (1).ipynb``, or the only notebook in the folder, is graded, with a note.
- Every failure says what was wrong: the notebook is not JSON at line N, not a notebook, or the
  grader itself failed (and the submission was retried).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import nbformat
import pytest
from assignment_helpers import ROOT, cell_scores, grading_env, student_notebook, write_submission

from losslab.grading.intake import check_notebook, choose_notebook
from losslab.grading.judge import Limits, judge_notebook
from losslab.grading.settings import VALIDATE_TIMEOUT
from losslab.grading.worker import describe_failure

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap is needed to grade")

SLOW_FOCAL = '''
import time


def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    time.sleep(1.7)  # a correct answer, just slow (a Python loop would do the same)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-ce)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''


def _env(**extra: str) -> dict:
    env = grading_env(LOSSLAB_GRADING_SEED="21", **extra)
    # The course's own limits, not a shortened test setting from the caller's environment.
    for key in ("LOSSLAB_CELL_TIMEOUT", "LOSSLAB_SANDBOX_STEP_SECONDS"):
        env.pop(key, None)
    return env


def _grade(subs, course, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losslab.grading", "grade", "--submissions",
                           str(subs), "--out", str(course), "--jobs", "2", *extra], cwd=ROOT,
                          env=env or _env(), capture_output=True, text=True, timeout=1200)


def _log(course) -> dict[str, dict]:
    with (course / "grading_log.csv").open() as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_a_check_gets_the_time_validate_gives_a_cell():
    code = subprocess.run([sys.executable, "-c", "from losslab.grading.judge import Limits; "
                           "print(Limits().step_seconds, Limits().cell_seconds)"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    step, cell = map(float, code.stdout.split())
    assert step == cell == VALIDATE_TIMEOUT, code.stdout + code.stderr


@needs_bwrap
def test_a_slow_correct_answer_gets_full_marks(tmp_path):
    # 13 calls in the reference check at 1.7 s each: about 22 s, past the old 20 s.
    subs = tmp_path / "submitted"
    write_submission(subs, "slow", "focal_loss",
                     student_notebook("focal_loss", answers={"focal_loss": SLOW_FOCAL}))
    course = tmp_path / "course"
    run = _grade(subs, course)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    cells = cell_scores(course)[("focal_loss", "slow")]
    assert all(score == most for score, most, _ in cells.values()), cells
    assert float(_log(course)["slow"]["seconds"]) > 22


@needs_bwrap
def test_the_feedback_says_when_a_check_ran_out_of_time():
    cells = [{"kind": "code", "source": "import time\n\ndef focal_loss(*args, **kwargs):\n"
                                        "    time.sleep(30)\n"},
             {"kind": "check", "grade_id": "t1", "checks": ["focal_loss.reference"]}]
    verdicts = judge_notebook("focal_loss", cells, limits=Limits(step_seconds=3), seed=1)
    message = verdicts["t1"].messages[0]
    assert not verdicts["t1"].passed
    assert "ran out of time" in message and "3 seconds" in message, message


def test_choose_notebook_takes_a_copy_or_the_only_notebook(tmp_path):
    exact = tmp_path / "exact"
    exact.mkdir()
    for name in ("focal_loss.ipynb", "focal_loss (1).ipynb", "scratch.ipynb"):
        (exact / name).write_text("{}")
    chosen, note = choose_notebook(exact, "focal_loss")
    assert chosen.name == "focal_loss.ipynb" and "scratch.ipynb" in note
    for name in ("focal_loss (1).ipynb", "focal_loss(2).ipynb", "focal_loss-1.ipynb",
                 "focal_loss_3.ipynb", "focal_loss-Copy1.ipynb", "focal_loss copy.ipynb"):
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        (folder / name).write_text("{}")
        (folder / "notes.ipynb").write_text("{}")
        chosen, note = choose_notebook(folder, "focal_loss")
        assert chosen is not None and chosen.name == name, (name, note)
        assert f"graded {name} as focal_loss.ipynb" in note
    only = tmp_path / "only"
    only.mkdir()
    (only / "my work.ipynb").write_text("{}")
    chosen, note = choose_notebook(only, "focal_loss")
    assert chosen.name == "my work.ipynb" and "the only notebook" in note
    two = tmp_path / "two"
    two.mkdir()
    for name in ("focal_loss (1).ipynb", "focal_loss (2).ipynb"):
        (two / name).write_text("{}")
    chosen, why = choose_notebook(two, "focal_loss")
    assert chosen is None
    assert "expected focal_loss.ipynb" in why and "focal_loss (2).ipynb" in why
    empty = tmp_path / "empty"
    empty.mkdir()
    assert choose_notebook(empty, "focal_loss")[0] is None


def test_a_broken_notebook_is_described_in_the_instructors_words():
    good = nbformat.writes(student_notebook("focal_loss")).encode()
    assert check_notebook(good) == ""
    broken = good[: len(good) // 2]
    line = broken.decode().count("\n") + 1
    problem = check_notebook(broken)
    assert problem.startswith(f"the notebook is not valid JSON at line {line}, column"), problem
    assert check_notebook(b"\xff\xfe{}").startswith("the notebook is not UTF-8")
    assert check_notebook(json.dumps({"cells": "nope"}).encode()).startswith(
        "the file is not a Jupyter notebook")


def test_nbgrader_failures_are_named_and_whose_fault():
    tail = ("[AutogradeApp | ERROR] Please see the the above traceback for details on the "
            "specific errors on the above failures.")
    fault, message = describe_failure(
        "Traceback ...\nnbgrader.nbgraderformat.common.ValidationError: Notebook failed to "
        "validate; the nbgrader metadata may be corrupted.\n" + tail, "autograding")
    assert fault == "submission" and "metadata of a graded or locked cell" in message
    fault, message = describe_failure(
        "Traceback ...\nRuntimeError: Inconsistent checksums for cell test_basic\n" + tail,
        "autograding")
    assert fault == "submission" and "test_basic" in message
    fault, message = describe_failure(
        "Traceback ...\nsqlite3.OperationalError: database is locked\n" + tail, "autograding")
    assert fault == "grader" and "the grader itself failed while autograding" in message
    assert "database is locked" in message and "Please see" not in message


@needs_bwrap
def test_copies_and_broken_notebooks_in_one_batch(tmp_path):
    subs = tmp_path / "submitted"
    right = student_notebook("stable_bce", answers={})
    copy = write_submission(subs, "copy", "stable_bce", right)
    copy.rename(copy.with_name("stable_bce (1).ipynb"))
    only = write_submission(subs, "only", "stable_bce", right)
    only.rename(only.with_name("homework.ipynb"))
    broken = write_submission(subs, "broken", "stable_bce", right)
    text = broken.read_text()
    broken.write_text(text[: len(text) // 3])
    course = tmp_path / "course"
    run = _grade(subs, course)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    log = _log(course)
    scores = cell_scores(course)
    for student, name in (("copy", "stable_bce (1).ipynb"), ("only", "homework.ipynb")):
        assert log[student]["status"] == "graded" and log[student]["message"] == ""
        note = log[student]["note"]
        assert note.startswith(f"graded {name}") and "as stable_bce.ipynb" in note, note
        cells = scores[("stable_bce", student)]
        assert all(score == most for score, most, _ in cells.values()), (student, cells)
    with (course / "grades.csv").open() as handle:
        graded = {row["student_id"] for row in csv.DictReader(handle)}
    assert {"copy", "only"} <= graded
    assert log["broken"]["status"] == "failed"
    assert log["broken"]["message"].startswith("the notebook is not valid JSON at line ")
    assert "Please see" not in run.stdout
