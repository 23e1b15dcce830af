"""The course's nbgrader settings, shared by ``nbgrader_config.py`` and the parallel grader."""

from __future__ import annotations

import os

COURSE_ID = "loss-functions-live"


def configure(c) -> None:
    """Apply the course settings to a traitlets ``Config`` ``c``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .preprocessors import (
        IsolatedChecks,
        RestoreMissingCells,
        RobustExecute,
        SanitizeFeedback,
    )

    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "exercises"
    # Students' own Validate and instructors' runs: no cell may take longer than this.
    c.Execute.timeout = 60
    c.ExecutePreprocessor.timeout = 60
    # Autograding: a cell may take this long in the student's kernel (the grade does not
    # depend on it, see IsolatedChecks); a cell that overruns stops the kernel run.
    c.RobustExecute.timeout = int(os.environ.get("LOSSLAB_CELL_TIMEOUT", "30"))
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
        IsolatedChecks,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    c.GenerateFeedback.preprocessors = [SanitizeFeedback, GetGrades, CSSHTMLHeaderPreprocessor]
