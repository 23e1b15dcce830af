"""The gradebook: seed it with each assignment's source cells, merge one worker's grades into
it, and export the grades CSV.

Every worker grades in a private copy of the course (its own ``gradebook.db``); only what
:func:`merge_result` copies (grades, comments, bounded notebooks and feedback pages, never
links) reaches the course folder.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

from .intake import Job
from .settings import MAX_NOTEBOOK_BYTES, GradingInputError, source_folder


def _api(course: Path, source_root: Path | None = None):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from .settings import configure

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
