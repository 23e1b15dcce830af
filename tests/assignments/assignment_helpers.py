"""Building submissions and reading grades for the assignment tests and the grading bench."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ("focal_loss", "manual_cross_entropy", "outlier_comparison", "stable_bce",
               "choose_loss", "gaussian_nll", "info_nce", "token_loss", "large_vocab")
CHECK_CALL = re.compile(r"""hidden_check\(\s*["'](\w+)["']\s*,\s*["'](\w+)["']""")


def grading_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def solution_sources(assignment: str) -> dict[str, str]:
    """The instructor's answer in every solution cell, by grade_id, markers removed."""
    nb = read(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    sources = {}
    for cell in nb.cells:
        if nbgrader_meta(cell).get("solution"):
            lines = [line for line in cell.source.splitlines()
                     if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line]
            sources[nbgrader_meta(cell)["grade_id"]] = "\n".join(lines)
    return sources


def student_notebook(assignment: str, answers: dict[str, str] | None = None,
                     edit=None) -> nbformat.NotebookNode:
    """A student's notebook: the release, with ``answers`` (default: the solution) filled in."""
    nb = read(ROOT / "exercises" / assignment / f"{assignment}.ipynb")
    if answers is not None:
        filled = dict(solution_sources(assignment))
        filled.update(answers)
        for cell in nb.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if nbgrader_meta(cell).get("solution") and grade_id in filled:
                cell.source = filled[grade_id]
    if edit is not None:
        edit(nb)
    return nb


def write_submission(folder: Path, student: str, assignment: str, nb) -> Path:
    path = folder / student / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def cell_scores(course: Path) -> dict[tuple[str, str], dict[str, tuple[float, float, bool]]]:
    """``{(assignment, student): {grade_id: (score, max_score, needs_manual_grade)}}``."""
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                cells = {}
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        cells[grade.name] = (float(grade.score), float(grade.max_score),
                                             bool(grade.needs_manual_grade))
                scores[(assignment.name, submission.student.id)] = cells
    return scores
