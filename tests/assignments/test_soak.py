"""A batch you can leave running: honest work graded in full, on time, beside kernels that break.

24 submissions graded by ``make grade`` with 2 workers, honest ones alternating with kernels
that exit, are killed by SIGKILL, segfault, hang past the cell limit, run out of memory, fork
daemons that keep the kernel's sockets, or write over their own connection and socket files.
Each hostile cell comes last, after the student's (correct) answers, so it can only break
the kernel, the sandbox and the worker, never its own tests. Every honest submission must get
full marks within 90 s of its own time, every submission must be logged as graded, and the run
must end with nothing left running. The batch is graded as root (when the tests run as root)
and as an ordinary user, like the red-team batch.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from assignment_helpers import ROOT, cell_scores, grading_env, student_notebook, write_submission
from test_red_team import _ordinary_user

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is needed to grade")

MARKER = "soak-daemon-marker"
# Notebook cells (where the hostile ones hang) get 10 s; graded test cells keep the full time
# Validate gives a cell, so that honest work is never cut short by a busy machine.
SOAK_ENV = {"LOSSLAB_GRADING_SEED": "5", "LOSSLAB_CELL_TIMEOUT": "10",
            "LOSSLAB_SANDBOX_STEP_SECONDS": "60"}
HONEST_SECONDS = 90

HOSTILE = {
    "exit": "import os\nos._exit(3)",
    "sigkill": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "segfault": "import ctypes\nctypes.string_at(0)",
    "hang": "while True:\n    pass",
    "memory": "hog = bytearray(64 << 30)\nraise MemoryError('still here')",
    # Detached children inherit the kernel's sockets and outlive it (setsid), then the
    # kernel itself goes.
    "daemons": f'''
import os, subprocess, time
subprocess.Popen(["setsid", "sh", "-c", "sleep 600 # {MARKER}"], start_new_session=True)
for _ in range(4):
    if os.fork() == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
os._exit(0)
''',
    # The kernel replaces its connection file and ZeroMQ socket files with garbage, and
    # keeps running.
    "overwrite": '''
import glob, os, sys
folder = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])
for path in glob.glob(folder + "/*"):
    os.remove(path)
    with open(path, "w") as handle:
        handle.write("garbage" * 1000)
''',
    # Both: detached children hold the sockets while the kernel wipes its folder and hangs.
    "daemons_overwrite": f'''
import glob, os, subprocess, sys
subprocess.Popen(["setsid", "sh", "-c", "sleep 600 # {MARKER}"], start_new_session=True)
folder = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])
for path in glob.glob(folder + "/*"):
    os.remove(path)
while True:
    pass
''',
}
ASSIGNMENTS = ("focal_loss", "stable_bce", "choose_loss")


def _with_last_cell(assignment: str, source: str):
    def edit(nb):
        from nbformat.v4 import new_code_cell

        nb.cells.append(new_code_cell(source))

    return student_notebook(assignment, answers={}, edit=edit)


def _build(folder: Path) -> dict[str, tuple[str, str]]:
    """24 submissions, honest and hostile in turn: ``{student: (assignment, kind)}``."""
    made = {}
    hostile = itertools.cycle(HOSTILE.items())
    for number in range(24):
        assignment = ASSIGNMENTS[(number // 2) % len(ASSIGNMENTS)]
        if number % 2 == 0:
            student, kind = f"s{number:02d}-honest", "honest"
            nb = student_notebook(assignment, answers={})
        else:
            kind, source = next(hostile)
            student = f"s{number:02d}-{kind.replace('_', '-')}"
            nb = _with_last_cell(assignment, source)
        write_submission(folder, student, assignment, nb)
        made[student] = (assignment, kind)
    return made


MODES = ["root", "user"] if os.geteuid() == 0 else ["user"]


@pytest.fixture(scope="module", params=MODES)
def soak(request):
    mode = request.param
    base = Path(tempfile.mkdtemp(prefix=f"losslab-soak-{mode}-"))
    base.chmod(0o755)
    try:
        made = _build(base / "submitted")
        course = base / "course"
        # The grader's temporary folders (kernel sockets, sandboxes, worker copies) go here,
        # so that what is left of them can be seen.
        scratch = base / "tmp"
        scratch.mkdir()
        scratch.chmod(0o1777)
        if mode == "user" and os.geteuid() == 0:
            options, _ = _ordinary_user(base)
            for path in [base / "submitted", *(base / "submitted").rglob("*")]:
                path.chmod(path.stat().st_mode | 0o005)
            course.mkdir()
            os.chown(course, options["uid"], -1)
            python, env, preexec = options["python"], options["env"], options["preexec_fn"]
            env.update(SOAK_ENV)
        else:
            python, env, preexec = sys.executable, grading_env(**SOAK_ENV), None
        env["TMPDIR"] = str(scratch)
        start = time.monotonic()
        run = subprocess.run([python, "-m", "losslab.grading", "grade", "--submissions",
                              str(base / "submitted"), "--out", str(course), "--jobs", "2"],
                             cwd=ROOT, env=env, preexec_fn=preexec, capture_output=True,
                             text=True, timeout=1800)
        seconds = time.monotonic() - start
        time.sleep(1)
        leftovers = subprocess.run(["pgrep", "-af", MARKER], capture_output=True,
                                   text=True).stdout
        with (course / "grading_log.csv").open() as handle:
            log = {row["student_id"]: row for row in csv.DictReader(handle)}
        scores = cell_scores(course)
        # What each feedback page says went wrong, to show when a grade is not as expected.
        problems = {}
        for student, (assignment, _) in made.items():
            page = course / "feedback" / student / assignment / f"{assignment}.html"
            text = page.read_text() if page.exists() else "(no feedback page)"
            problems[student] = re.findall(r"Could not test your code:[^<]{0,300}", text)[:3]
        yield {"mode": mode, "run": run, "made": made, "log": log, "scores": scores,
               "problems": problems, "seconds": seconds, "leftovers": leftovers,
               "scratch": sorted(p.name for p in scratch.iterdir())}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_run_ends_and_logs_every_submission_as_graded(soak):
    run = soak["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert set(soak["log"]) == set(soak["made"])
    for student, row in soak["log"].items():
        # A kernel or sandbox that breaks is the submission's business, but grading goes on:
        # no submission fails, none is retried (the workers never got stuck).
        assert row["status"] == "graded", (soak["mode"], student, row)
        assert row["attempts"] == "1", (soak["mode"], student, row)


def test_every_honest_submission_gets_full_marks_within_its_own_time(soak):
    honest = [s for s, (_, kind) in soak["made"].items() if kind == "honest"]
    assert len(honest) == 12
    for student in honest:
        assignment = soak["made"][student][0]
        cells = soak["scores"][(assignment, student)]
        assert cells and all(score == most for score, most, _ in cells.values()), (
            soak["mode"], student, cells, soak["problems"][student], soak["log"][student])
        row = soak["log"][student]
        assert float(row["seconds"]) <= HONEST_SECONDS, (soak["mode"], student, row)
        assert row["message"] == "", row


def test_hostile_kernels_cost_only_their_own_kernel(soak):
    # The hostile cell runs after the answers: the checks still see correct functions.
    for student, (assignment, kind) in soak["made"].items():
        if kind == "honest":
            continue
        cells = soak["scores"][(assignment, student)]
        assert all(score == most for score, most, _ in cells.values()), (
            soak["mode"], student, kind, cells, soak["problems"][student])


def test_nothing_outlives_the_run(soak):
    assert soak["leftovers"] == "", soak["leftovers"]
    # Kernel socket folders, sandboxes and the workers' course copies are all removed.
    assert soak["scratch"] == [], soak["scratch"]
