"""The package's layers: import-linter's contracts hold, and each chapter has its figure module.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); the second test proves they
are live by breaking one in a copy of the package and watching import-linter refuse it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
FIGURE_IMPORT = re.compile(r"^from losslab\.figures import (\w+) as figures$", re.M)


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_layer_contracts_hold():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, f"import-linter found a broken layer contract:\n{proc.stdout}"
    assert "Contracts: 5 kept, 0 broken." in proc.stdout, proc.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "losslab", tmp_path / "losslab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    engine = tmp_path / "losslab" / "engine" / "encoding.py"
    engine.write_text(engine.read_text() + "\nfrom ..figures import binary  # noqa: E402,F401\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0, f"expected the engine importing a figure to fail:\n{proc.stdout}"
    assert "figures above site, engine and math BROKEN" in proc.stdout, proc.stdout


def chapters_with_widgets() -> dict[str, str]:
    """``{chapter stem: its source}`` for every chapter that draws a widget."""
    found = {}
    for md in sorted((ROOT / "chapters").glob("*.md")):
        text = md.read_text()
        if "losslab" in text and "```{code-cell}" in text:
            found[md.stem] = text
    return found


def test_every_chapter_draws_from_the_figure_module_named_like_it():
    figure_modules = {p.stem for p in (ROOT / "losslab" / "figures").glob("*.py")} - {"__init__"}
    chapters = chapters_with_widgets()
    assert chapters, "expected chapters that draw widgets"
    for stem, text in chapters.items():
        imported = FIGURE_IMPORT.findall(text)
        assert imported == [stem], (
            f"chapters/{stem}.md should import its figures as "
            f"'from losslab.figures import {stem} as figures'; it imports {imported or 'none'}")
    assert figure_modules == set(chapters), (
        "each module of losslab/figures serves the chapter of the same name; modules "
        f"without a chapter: {sorted(figure_modules - set(chapters))}, chapters without "
        f"a module: {sorted(set(chapters) - figure_modules)}")


def test_no_page_imports_the_grader():
    pages = [*(ROOT / "chapters").glob("*.md"), ROOT / "intro.md"]
    offenders = [p.name for p in pages if "losslab.grading" in p.read_text()]
    assert not offenders, f"course pages must not import the grader: {offenders}"


def test_the_probes_bound_into_the_sandbox_import_little_beside_each_other():
    """What the sandbox sees of the grader is ``losslab/grading/probes`` alone: any other import
    there would fail inside the sandbox or widen what student code can reach."""
    import ast
    import sys

    probes = ROOT / "losslab" / "grading" / "probes"
    siblings = {path.stem for path in probes.glob("*.py")}
    # IPython: its input transformer turns a cell's magics into Python, as the kernel does.
    allowed = set(sys.stdlib_module_names) | {"torch", "numpy", "IPython"}
    offenders = []
    for path in sorted(probes.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
                offenders += [f"{path.name}: import {n}" for n in names if n not in allowed]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    top = (node.module or "").split(".")[0]
                    if top not in allowed:
                        offenders.append(f"{path.name}: from {node.module} import ...")
                elif node.level > 1 or (node.module and node.module.split(".")[0]
                                        not in siblings):
                    offenders.append(f"{path.name}: from {'.' * node.level}{node.module or ''}")
                elif node.module is None:
                    offenders += [f"{path.name}: from . import {a.name}" for a in node.names
                                  if a.name not in siblings]
    assert offenders == []
