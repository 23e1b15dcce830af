"""Grading throughput: the parallel grader (make grade) against serial `nbgrader autograde`.

Builds a batch of 40 submissions from all the assignments (solutions, blank releases and the
common mistakes of tests/assignments/fixtures.py), grades it both ways with the same course
settings and the same seed, checks that both give the same scores, and prints seconds per
graded submission and submissions per minute.

    .venv/bin/python bench/grading.py            # BENCH_SUBMISSIONS=40 by default
    BENCH_ASSIGNMENTS=focal_loss,stable_bce .venv/bin/python bench/grading.py   # some only
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "assignments"))
sys.path.insert(0, str(ROOT))

from assignment_fixtures import FIXTURES  # noqa: E402
from assignment_helpers import (  # noqa: E402
    ASSIGNMENTS,
    cell_scores,
    grading_env,
    student_notebook,
    write_submission,
)

SLOW_ON_PURPOSE = ("loop", "swallow", "hang", "os_exit", "memory")


def chosen_assignments() -> tuple[str, ...]:
    """``BENCH_ASSIGNMENTS`` (comma-separated), or every assignment."""
    wanted = [a for a in os.environ.get("BENCH_ASSIGNMENTS", "").split(",") if a]
    unknown = sorted(set(wanted) - set(ASSIGNMENTS))
    if unknown:
        sys.exit(f"BENCH_ASSIGNMENTS: expected some of {', '.join(ASSIGNMENTS)}; "
                 f"got {', '.join(unknown)}")
    return tuple(a for a in ASSIGNMENTS if a in wanted) or ASSIGNMENTS


def build_batch(folder: Path, size: int) -> list[tuple[str, str]]:
    """``size`` submissions spread over the assignments: right, blank and wrong answers."""
    chosen = chosen_assignments()
    kinds = {a: [("solution", {}, None), ("blank", None, None)] for a in chosen}
    for fixture in FIXTURES:
        if fixture.assignment in kinds and not any(word in fixture.name
                                                   for word in SLOW_ON_PURPOSE):
            kinds[fixture.assignment].append((fixture.name, fixture.cells, fixture.edit))
    cycles = {a: itertools.cycle(kinds[a]) for a in chosen}
    made = []
    for number in range(size):
        assignment = chosen[number % len(chosen)]
        kind, answers, edit = next(cycles[assignment])
        student = f"s{number:03d}-{kind}"
        nb = student_notebook(assignment, answers=answers, edit=edit)
        write_submission(folder, student, assignment, nb)
        made.append((assignment, student))
    return made


def run(command: list[str], cwd: Path, env: dict) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def serial(submitted: Path, course: Path, env: dict, assignments: set[str]) -> float:
    """Plain nbgrader, one student at a time, in an ordinary course folder."""
    course.mkdir()
    shutil.copytree(submitted, course / "submitted")
    for assignment in sorted(assignments):
        shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    root = f"--CourseDirectory.root={course}"
    for assignment in sorted(assignments):
        run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
             root], ROOT, env)
    start = time.perf_counter()
    for assignment in sorted(assignments):
        run([sys.executable, "-m", "nbgrader", "autograde", assignment, root], ROOT, env)
        run([sys.executable, "-m", "nbgrader", "generate_feedback", assignment, root], ROOT, env)
    run([sys.executable, "-m", "nbgrader", "export", root, f"--to={course / 'grades.csv'}"],
        ROOT, env)
    return time.perf_counter() - start


def parallel(submitted: Path, course: Path, env: dict, jobs: int) -> float:
    start = time.perf_counter()
    run([sys.executable, "-m", "losslab.grading", "grade", "--submissions", str(submitted),
         "--out", str(course), "--jobs", str(jobs)], ROOT, env)
    return time.perf_counter() - start


def report(label: str, seconds: float, count: int) -> None:
    print(f"{label:<44} {seconds:7.1f} s total  {seconds / count:6.2f} s/submission  "
          f"{60 * count / seconds:6.1f} submissions/min")


def main() -> int:
    size = int(os.environ.get("BENCH_SUBMISSIONS", "40"))
    jobs = int(os.environ.get("BENCH_JOBS", "0")) or os.cpu_count() or 1
    env = grading_env(LOSSLAB_GRADING_SEED="11")
    with tempfile.TemporaryDirectory(prefix="losslab-bench-") as tmp:
        base = Path(tmp)
        made = build_batch(base / "submitted", size)
        assignments = {a for a, _ in made}
        print(f"grading bench: {size} submissions over {len(assignments)} assignments, "
              f"{os.cpu_count()} cores")
        fast = parallel(base / "submitted", base / "parallel", env, jobs)
        slow = serial(base / "submitted", base / "serial", env, assignments)
        report(f"parallel grader (make grade, {jobs} workers)", fast, size)
        report("serial nbgrader autograde + generate_feedback", slow, size)
        print(f"speed-up: {slow / fast:.2f}x")
        ours, theirs = cell_scores(base / "parallel"), cell_scores(base / "serial")
        differ = [key for key in ours if ours[key] != theirs.get(key)]
        print(f"same grades both ways: {len(ours) - len(differ)}/{len(ours)} submissions")
        return 1 if differ or len(ours) != size else 0


if __name__ == "__main__":
    sys.exit(main())
