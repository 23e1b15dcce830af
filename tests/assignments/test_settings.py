"""The grader's settings: one module owns every limit and ``LOSSLAB_*`` variable, read when used."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from assignment_helpers import ROOT, grading_env

from losslab.grading import settings
from losslab.grading.judge import Limits

GRADING = Path(settings.__file__).resolve().parent


def _modules() -> list[Path]:
    return sorted(p for p in GRADING.rglob("*.py") if p.name != "settings.py")


def _constants(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            yield node


def test_no_module_but_settings_names_a_losslab_variable():
    offenders = [f"{path.relative_to(GRADING)}:{node.lineno} {node.value}"
                 for path in _modules() for node in _constants(path)
                 if isinstance(node.value, str) and re.fullmatch(r"LOSSLAB_[A-Z_]+", node.value)]
    assert offenders == []


def test_the_time_and_size_limits_are_written_once():
    # The numbers that used to be repeated across the grader (the submission's and the CPU's
    # 900 s, the stall's 120 s, the sandbox's 3072 MiB) and the other limits (the kernel's
    # memory, the address-space slack, files per tmpfs, output per cell, a worker's start)
    # appear only in settings.py.
    # (checks/ and probes/ hold each assignment's own data, sized as the assignment needs.)
    owned = {900, 900.0, 120, 120.0, 3072, 1536, 16384, 256 * 1024, 300, 300.0}
    plumbing = [p for p in _modules() if p.parent == GRADING]
    offenders = [f"{path.relative_to(GRADING)}:{node.lineno} {node.value!r}"
                 for path in plumbing for node in _constants(path)
                 if type(node.value) in (int, float) and node.value in owned]
    assert offenders == []


def test_variables_are_read_when_used_not_at_import(monkeypatch):
    monkeypatch.setenv("LOSSLAB_CELL_TIMEOUT", "7")
    monkeypatch.setenv("LOSSLAB_SANDBOX_MEMORY_MB", "1234")
    limits = Limits()
    assert (limits.cell_seconds, limits.step_seconds, limits.memory_mb) == (7.0, 7.0, 1234)
    monkeypatch.setenv("LOSSLAB_SANDBOX_STEP_SECONDS", "3")
    monkeypatch.setenv("LOSSLAB_STALL_SECONDS", "9")
    assert Limits().step_seconds == 3.0
    assert settings.stall_seconds() == 9.0
    monkeypatch.delenv("LOSSLAB_CELL_TIMEOUT")
    monkeypatch.delenv("LOSSLAB_SANDBOX_STEP_SECONDS")
    assert Limits().step_seconds == settings.VALIDATE_TIMEOUT


@pytest.mark.parametrize("value", ["soon", "-1", "0"])
def test_a_bad_value_says_what_was_expected_and_what_came(monkeypatch, value):
    monkeypatch.setenv("LOSSLAB_STALL_SECONDS", value)
    with pytest.raises(settings.GradingInputError,
                       match=rf"LOSSLAB_STALL_SECONDS must be .*got '{re.escape(value)}'"):
        settings.stall_seconds()


@pytest.mark.parametrize("name, value", [("LOSSLAB_CELL_TIMEOUT", "soon"),
                                         ("LOSSLAB_SANDBOX_MEMORY_MB", "-1"),
                                         ("LOSSLAB_STALL_SECONDS", "0")])
def test_make_grade_names_a_bad_setting_before_it_runs_anything(tmp_path, name, value):
    (tmp_path / "submitted").mkdir()
    run = subprocess.run([sys.executable, "-m", "losslab.grading", "grade", "--submissions",
                          str(tmp_path / "submitted"), "--out", str(tmp_path / "course")],
                         cwd=ROOT, env=grading_env(**{name: value}), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"make grade: {name} must be "), run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "course").exists()


def test_a_fractional_cell_limit_stays_a_limit(monkeypatch):
    from traitlets.config import Config

    monkeypatch.setenv("LOSSLAB_CELL_TIMEOUT", "0.5")
    config = Config()
    settings.configure(config)
    # nbclient reads 0 as no limit at all; half a second is rounded up to one.
    assert config.RobustExecute.timeout == 1
