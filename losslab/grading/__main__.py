"""Command line: ``python -m losslab.grading release|grade ...`` (``make release``, ``make grade``).

release  regenerate exercises/<assignment>/ from solutions/ with nbgrader generate_assignment
grade    autograde a folder of submissions (or LMS zip downloads) on every core, write feedback
         and export grades.csv
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .checks import ASSIGNMENTS
from .settings import (
    ISOLATION_ENV,
    SOURCE_ENV,
    STALL_SECONDS,
    STALL_SECONDS_ENV,
    SUBMISSION_SECONDS,
    UNSAFE,
)


def release(names: list[str]) -> int:
    from .processes import worker_env
    from .settings import REPO_ROOT

    for name in names:
        if name not in ASSIGNMENTS:
            print(f"unknown assignment {name!r}; expected one of {', '.join(ASSIGNMENTS)}",
                  file=sys.stderr)
            return 2
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force",
                   "--no-db", "--log-level=WARN"]
        run = subprocess.run(command, cwd=REPO_ROOT, env=worker_env())
        if run.returncode != 0:
            print(f"nbgrader generate_assignment {name} failed", file=sys.stderr)
            return run.returncode
        print(f"released exercises/{name}/{name}.ipynb")
    return 0


def grade(args: argparse.Namespace) -> int:
    from . import sandbox
    from .batch import Outcome, grade_all, write_log
    from .gradebook import export_csv
    from .intake import DEFAULT_ZIP_REGEXP, Job, collect_zips, find_submissions
    from .settings import GradingInputError, Limits, source_folder, stall_seconds

    if args.unsafe_no_isolation:
        os.environ[ISOLATION_ENV] = UNSAFE
        print("WARNING: --unsafe-no-isolation: student code runs as you, without bubblewrap; "
              "it can read solutions/ and the gradebook and reach the network.", file=sys.stderr)
    if args.source:
        os.environ[SOURCE_ENV] = str(Path(args.source).resolve())
    os.umask(0o077)
    course = Path(args.out).resolve()
    try:
        # Every LOSSLAB_* setting is read once here, so a bad one is named before anything runs.
        stall = stall_seconds()
        Limits()
    except GradingInputError as error:
        print(f"make grade: {error}", file=sys.stderr)
        return 2
    try:
        # Fail closed before anything is unpacked or run.
        sandbox.require()
    except sandbox.IsolationUnavailable as error:
        print(f"make grade: {error}", file=sys.stderr)
        return 3
    rejected: list[tuple[str, str]] = []
    try:
        if args.zips:
            if not args.assignment:
                raise GradingInputError(
                    "--zips needs --assignment (ASSIGNMENT=...): an LMS download holds one "
                    f"assignment; expected one of {', '.join(ASSIGNMENTS)}"
                )
            course.mkdir(parents=True, exist_ok=True)
            course.chmod(0o700)
            folder, rejected = collect_zips(Path(args.zips).resolve(), args.assignment, course,
                                            args.zip_regexp or DEFAULT_ZIP_REGEXP)
            try:
                jobs = find_submissions(folder, args.assignment)
            except GradingInputError:
                if not rejected:
                    raise
                jobs = []
        else:
            folder = Path(args.submissions).resolve()
            jobs = find_submissions(folder, args.assignment)
    except GradingInputError as error:
        print(f"make grade: {error}", file=sys.stderr)
        return 2
    source = source_folder()
    missing = sorted({job.assignment for job in jobs
                      if not (source / job.assignment / f"{job.assignment}.ipynb").is_file()})
    if missing and not (course / "gradebook.db").exists():
        print(f"make grade: expected the instructor's source notebooks "
              f"{', '.join(f'{source}/{name}/{name}.ipynb' for name in missing)}; SOURCE=... "
              "(--source) names the folder that holds <assignment>/<assignment>.ipynb",
              file=sys.stderr)
        return 2
    workers = args.jobs or None
    print(f"Grading {len(jobs)} submissions from {folder} into {course} "
          f"with {workers or 'all'} parallel workers ({sandbox.describe_mode()})", flush=True)
    outcomes = [Outcome(Job(student, args.assignment, folder), "failed", 0.0,
                        f"not graded: {reason}", isolation="not run")
                for student, reason in rejected]
    try:
        if jobs:
            outcomes += grade_all(jobs, course, workers=args.jobs, timeout=args.timeout,
                                  progress=lambda line: print(line, flush=True), stall=stall)
    finally:
        # Whatever happened, the grades and the log are written.
        try:
            if (course / "gradebook.db").exists():
                export_csv(course, course / "grades.csv")
        finally:
            write_log(outcomes, course / "grading_log.csv")
    failed = [o for o in outcomes if o.status != "graded"]
    manual = [o for o in outcomes if o.needs_manual_grade]
    noted = [o for o in outcomes if o.note]
    print(f"Done: {len(outcomes) - len(failed)} graded, {len(failed)} failed. "
          f"Grades: {course / 'grades.csv'}; per-submission log: {course / 'grading_log.csv'}; "
          f"feedback: {course / 'feedback'}")
    if manual:
        print(f"{len(manual)} submissions wait for manual grading (nbgrader formgrader).")
    for outcome in failed:
        print(f"  failed: {outcome.job.assignment}/{outcome.job.student}: {outcome.message}")
    for outcome in noted:
        print(f"  note: {outcome.job.assignment}/{outcome.job.student}: {outcome.note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m losslab.grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="regenerate exercises/ from solutions/")
    rel.add_argument("assignments", nargs="*", default=list(ASSIGNMENTS))
    gr = sub.add_parser("grade", help="autograde submissions in parallel")
    source = gr.add_mutually_exclusive_group(required=True)
    source.add_argument("--submissions", help="folder laid out as <student>/<assignment>/")
    source.add_argument("--zips", help="folder of LMS downloads (.zip or .ipynb files)")
    gr.add_argument("--assignment", choices=ASSIGNMENTS, help="grade only this assignment")
    gr.add_argument("--zip-regexp", help="regular expression for LMS file names "
                    "(named groups student_id and file_id)")
    gr.add_argument("--jobs", type=int, default=0, help="parallel workers (0: every core)")
    gr.add_argument("--timeout", type=float, default=SUBMISSION_SECONDS,
                    help=f"seconds one attempt at one submission may take in all (default "
                    f"{SUBMISSION_SECONDS:g}; a worker that makes no progress for "
                    f"{STALL_SECONDS_ENV}, default {STALL_SECONDS:g}, is replaced sooner and "
                    "the submission retried once)")
    gr.add_argument("--source", help="folder of the instructor's source notebooks "
                    "(<assignment>/<assignment>.ipynb; default: solutions/, which is public)")
    gr.add_argument("--unsafe-no-isolation", action="store_true",
                    help="grade WITHOUT bubblewrap: student code runs as you (never for credit)")
    gr.add_argument("--out", default=".", help="nbgrader course folder for the gradebook, "
                    "autograded/, feedback/ and grades.csv (default: the repository root)")
    args = parser.parse_args(argv)
    if args.command == "release":
        return release(args.assignments)
    return grade(args)


if __name__ == "__main__":
    sys.exit(main())
