"""What the grader reads of a notebook's cells: which are test cells, which checks a test cell
names, where its hidden tests are, and the name of the verdict the judge writes into it."""

from __future__ import annotations

import re

from nbformat.notebooknode import NotebookNode
from nbgrader import utils

CHECK_CALL = re.compile(r"""hidden_check\(\s*["'](\w+)["']\s*,\s*["'](\w+)["']""")
HIDDEN_REGION = re.compile(r"[^\n]*BEGIN HIDDEN TESTS.*?END HIDDEN TESTS[^\n]*\n?", re.DOTALL)
# The error a test cell shows when the judge finds it failed (the only output it keeps).
VERDICT_ENAME = "TestFailed"


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograder test cell: graded code that the student does not write."""
    return (
        cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)
    )


def checks_named(source: str) -> list[str]:
    """The checks a test cell's ``hidden_check("assignment", "name")`` calls name."""
    return [f"{assignment}.{name}" for assignment, name in CHECK_CALL.findall(source)]
