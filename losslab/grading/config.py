"""The course's nbgrader settings, shared by ``nbgrader_config.py`` and the parallel grader."""

from __future__ import annotations

import os

COURSE_ID = "loss-functions-live"
VALIDATE_TIMEOUT = 60


def configure(c) -> None:
    """Apply the course settings to a traitlets ``Config`` ``c``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .feedback import InertFeedbackExporter
    from .preprocessors import (
        IsolatedChecks,
        RestoreMissingCells,
        RobustExecute,
        SanitizeFeedback,
    )

    c.CourseDirectory.course_id = COURSE_ID
    # The instructor's sources (solutions and hidden tests); LOSSLAB_SOURCE (make grade
    # SOURCE=...) points at a private copy when grading for credit: solutions/ is public.
    c.CourseDirectory.source_directory = os.environ.get("LOSSLAB_SOURCE", "solutions")
    c.CourseDirectory.release_directory = "exercises"
    # Students' own Validate and instructors' runs: no cell may take longer than this.
    c.Execute.timeout = VALIDATE_TIMEOUT
    c.ExecutePreprocessor.timeout = VALIDATE_TIMEOUT
    # Autograding gives every notebook cell as long as Validate does (in the kernel and in
    # the sandbox), so an exploration cell Validate accepts is never cut short by grading.
    c.RobustExecute.timeout = int(os.environ.get("LOSSLAB_CELL_TIMEOUT", VALIDATE_TIMEOUT))
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
    # Student output reaches the feedback HTML only through nbconvert's sanitizer: no
    # scripts, no JavaScript outputs, no event handlers (the instructor opens these too).
    # Then the whole rendered page, markdown cells included, is cleaned by an allow-list
    # before it is written (losslab.grading.feedback).
    c.SanitizeHTML.safe_output_keys = ["metadata", "text/plain", "image/png", "image/jpeg",
                                       "text/html", "text/markdown"]
    c.SanitizeHTML.sanitized_output_types = ["text/html", "text/markdown"]
    c.HTMLExporter.sanitize_html = True
    c.GenerateFeedback.preprocessors = [SanitizeFeedback, SanitizeHTML, GetGrades,
                                        CSSHTMLHeaderPreprocessor]
    c.GenerateFeedback.exporter_class = InertFeedbackExporter
