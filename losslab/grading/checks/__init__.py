"""Registry of the checks that decide each graded test cell.

A check has three parts that run in different places:

- ``make_inputs(gen)`` builds the test inputs on the CPU in the trusted grader process;
- ``probe(p, inputs)`` runs next to the student's code (in the sandbox when grading) and only
  calls the student's functions, returning plain tensors, strings and numbers; probes live in
  :mod:`losslab.grading.probes`, the only grading code the sandbox can see;
- ``judge(inputs, outputs)`` runs in the trusted grader process, computes the references with a
  torch the student never touched, and raises :class:`CheckFailed` with a message fit for the
  student's feedback (hidden cases never quote reference values).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ASSIGNMENTS = (
    "focal_loss",
    "manual_cross_entropy",
    "outlier_comparison",
    "stable_bce",
    "choose_loss",
    "gaussian_nll",
    "info_nce",
    "token_loss",
    "large_vocab",
)


class CheckFailed(AssertionError):
    """A check did not hold; ``str(error)`` is safe to show to the student."""


@dataclass(frozen=True)
class Check:
    """One graded test cell's decision."""

    assignment: str
    name: str
    title: str
    make_inputs: Callable[[Any], dict]
    probe: Callable[[Any, dict], dict]
    judge: Callable[[dict, dict], None]

    @property
    def key(self) -> str:
        return f"{self.assignment}.{self.name}"


def checks_for(assignment: str) -> dict[str, Check]:
    """All checks of one assignment, by name."""
    if assignment not in ASSIGNMENTS:
        raise KeyError(
            f"unknown assignment {assignment!r}; expected one of {', '.join(ASSIGNMENTS)}"
        )
    module = importlib.import_module(f"{__name__}.{assignment}")
    return {check.name: check for check in module.CHECKS}


def get_check(assignment: str, name: str) -> Check:
    """The check ``assignment.name``; a clear KeyError when there is none."""
    checks = checks_for(assignment)
    if name not in checks:
        raise KeyError(
            f"assignment {assignment!r} has no check {name!r}; it has {', '.join(sorted(checks))}"
        )
    return checks[name]
