"""Binder's configuration and the launch buttons of the built book.

- ``binder/requirements.txt`` pins what ``requirements.txt`` pins (less the lines marked
  ``# test-only``, references only the tests use), torch as its CPU wheel
  from PyTorch's CPU index, and nothing unpinned; ``binder/runtime.txt`` asks for a Python
  the package supports; ``binder/postBuild`` is a valid executable script that installs
  the settings file next to it.
- ``binder/overrides.json`` makes JupyterLab open ``.md`` files with a viewer that the
  installed jupytext really registers (tests/test_jupyterlab.py opens one that way).
- Every notebook page of the built book has a Binder button that opens that very file in
  JupyterLab on mybinder.org; a Colab button only where the page is an ``.ipynb``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from test_site_browser import toc_files

from losslab.site import build

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BINDERHUB = "https://mybinder.org"
COLAB = "https://colab.research.google.com"


def requirement_lines(path: Path) -> tuple[list[str], list[str]]:
    """The option lines and the requirement lines of a requirements file."""
    options, reqs = [], []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        (options if line.startswith("-") else reqs).append(line)
    return options, reqs


def pins(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` for each ``name==version`` line of a requirements file."""
    found = {}
    for line in requirement_lines(path)[1]:
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"expected {path.relative_to(ROOT)} to pin {req.name} with ==, got {line!r}")
        found[re.sub(r"[-_.]+", "-", req.name).lower()] = specs[0].version
    return found


def marked_test_only(path: Path) -> set[str]:
    """Canonical names of the lines marked ``# test-only`` (references the tests compare
    against, which Binder does not need)."""
    marked = set()
    for raw in path.read_text().splitlines():
        line, _, comment = raw.partition(" #")
        if line.strip() and comment.strip().startswith("test-only"):
            marked.add(re.sub(r"[-_.]+", "-", Requirement(line.strip()).name).lower())
    return marked


def test_binder_pins_are_the_root_pins_with_torch_from_the_cpu_index():
    root, binder = pins(ROOT / "requirements.txt"), pins(BINDER / "requirements.txt")
    assert "torch" in root, "expected requirements.txt to pin torch"
    for name in marked_test_only(ROOT / "requirements.txt"):
        root.pop(name)
    expected = dict(root, torch=root["torch"].split("+")[0] + "+cpu")
    missing = {k: v for k, v in expected.items() if k not in binder}
    different = {k: (v, binder[k]) for k, v in expected.items()
                 if k in binder and binder[k] != v}
    extra = sorted(set(binder) - set(expected))
    assert not missing and not different and not extra, (
        "expected binder/requirements.txt to pin exactly what requirements.txt pins "
        "(torch as its +cpu build); "
        f"missing: {missing}; different (root, binder): {different}; not in root: {extra}")


def test_no_chapter_or_course_module_imports_a_test_only_package():
    names = {name.replace("-", "_") for name in marked_test_only(ROOT / "requirements.txt")}
    assert names, "expected requirements.txt to list its test-only pins"
    for path in [*ROOT.glob("chapters/*.md"), *ROOT.glob("losslab/**/*.py"),
                 *ROOT.glob("solutions/*/*.ipynb")]:
        text = path.read_text()
        for name in names:
            assert not re.search(rf"(import|from)\s+{name}\b", text), (
                f"{path.relative_to(ROOT)} imports {name}, which Binder does not install")


def test_binder_requirements_take_torch_from_pytorchs_cpu_index_only():
    options, _ = requirement_lines(BINDER / "requirements.txt")
    assert options == [f"--extra-index-url {CPU_INDEX}"], (
        f"expected the one option line '--extra-index-url {CPU_INDEX}', got {options}")
    # The packages that put the course's pieces into JupyterLab are all there.
    needed = {"jupyterlab", "jupytext", "nbgrader", "anywidget", "ipywidgets", "ipykernel"}
    absent = needed - set(pins(BINDER / "requirements.txt"))
    assert not absent, f"expected binder/requirements.txt to pin {sorted(absent)} too"


def test_binder_python_is_one_the_package_supports():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(3\.\d+)", runtime)
    assert match, f"expected binder/runtime.txt to read 'python-3.X', got {runtime!r}"
    project = (ROOT / "pyproject.toml").read_text()
    requires = re.search(r'^requires-python\s*=\s*"([^"]+)"', project, re.M)
    assert requires, "expected requires-python in pyproject.toml"
    assert SpecifierSet(requires.group(1)).contains(match.group(1) + ".0"), (
        f"expected Binder's Python {match.group(1)} to satisfy requires-python "
        f"{requires.group(1)!r}")


def test_postbuild_is_an_executable_script_that_installs_losslab_and_the_settings():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK), "expected binder/postBuild to be executable"
    mode = subprocess.run(["git", "ls-files", "-s", "binder/postBuild"], cwd=ROOT,
                          capture_output=True, text=True).stdout.split(" ")[0]
    assert mode in ("", "100755"), f"expected git to record binder/postBuild as 100755, got {mode}"
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, f"binder/postBuild is not valid bash: {check.stderr}"
    text = script.read_text()
    assert re.search(r"pip install .*-e \.", text), "expected postBuild to install losslab"
    assert "binder/overrides.json" in text and "overrides.d" in text, (
        "expected postBuild to copy binder/overrides.json into JupyterLab's overrides.d")


def test_overrides_open_markdown_with_a_viewer_that_jupytext_registers():
    overrides = json.loads((BINDER / "overrides.json").read_text())
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers.get("markdown") == viewers.get("myst") == "Jupytext Notebook", (
        f"expected markdown and myst files to open with 'Jupytext Notebook', got {viewers}")
    static = Path(sys.prefix) / "share/jupyter/labextensions/jupyterlab-jupytext/static"
    bundles = "".join(p.read_text(errors="replace") for p in static.glob("*.js"))
    assert '"Jupytext Notebook"' in bundles, (
        f"expected the installed jupytext JupyterLab extension ({static}) to register a "
        "'Jupytext Notebook' viewer; it does not mention one")


class LaunchLinks(HTMLParser):
    """The links in a page's launch-buttons dropdown: ``{button text: href}``."""

    def __init__(self):
        super().__init__()
        self.links: dict[str, str] = {}
        self._depth = 0  # nesting depth inside the launch dropdown; 0 outside it
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._depth:
            if tag == "div":
                self._depth += 1
            if tag == "a":
                self._href, self._text = attrs.get("href"), ""
        elif tag == "div" and "dropdown-launch-buttons" in (attrs.get("class") or ""):
            self._depth = 1

    def handle_endtag(self, tag):
        if not self._depth:
            return
        if tag == "a" and self._href is not None:
            self.links[self._text.strip()] = self._href
            self._href = None
        if tag == "div":
            self._depth -= 1

    def handle_data(self, data):
        if self._href is not None:
            self._text += data


def launch_links(html: str) -> dict[str, str]:
    parser = LaunchLinks()
    parser.feed(html)
    return parser.links


def is_notebook(source: Path) -> bool:
    if source.suffix == ".ipynb":
        return True
    text = source.read_text()
    if not text.startswith("---"):
        return False
    header = yaml.safe_load(text.split("---", 2)[1]) or {}
    return "kernelspec" in header


def expected_links(rel_path: str, book_config: Path) -> dict[str, str]:
    config = yaml.safe_load(book_config.read_text())
    repo = urlparse(config["repository"]["url"]).path.strip("/")
    branch = config["repository"]["branch"]
    links = {"Binder": f"{BINDERHUB}/v2/gh/{repo}/{branch}?urlpath=lab/tree/{rel_path}"}
    if rel_path.endswith(".ipynb"):
        links["Colab"] = f"{COLAB}/github/{repo}/blob/{branch}/{rel_path}"
    return links


def source_of(book: Path, docname: str) -> Path:
    for suffix in (".ipynb", ".md"):
        if (book / (docname + suffix)).is_file():
            return book / (docname + suffix)
    raise AssertionError(f"the toc lists {docname} but neither .ipynb nor .md exists")


def test_launch_buttons_in_the_config():
    launch = yaml.safe_load((ROOT / "_config.yml").read_text())["launch_buttons"]
    assert launch.get("notebook_interface") == "jupyterlab"
    assert launch.get("binderhub_url") == BINDERHUB
    assert launch.get("colab_url") == COLAB
    assert launch.get("thebe") is False, "Thebe stays off: see binder/README.md"


@pytest.mark.parametrize("docname", toc_files())
def test_every_notebook_page_launches_its_own_file(docname):
    page = HTML / f"{docname}.html"
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing; run `make book` first"
    source = source_of(ROOT, docname)
    links = launch_links(page.read_text())
    if not is_notebook(source):
        assert links == {}, f"expected no launch buttons on {docname} (not a notebook)"
        return
    rel = source.relative_to(ROOT).as_posix()
    assert links == expected_links(rel, ROOT / "_config.yml"), (
        f"expected {page.relative_to(ROOT)} to launch {rel} with "
        f"{expected_links(rel, ROOT / '_config.yml')}, found {links}")
    urlpath = parse_qs(urlparse(links["Binder"]).query)["urlpath"][0]
    assert (ROOT / urlpath.removeprefix("lab/tree/")).is_file(), (
        f"the Binder link of {docname} opens {urlpath}, which is not a file of the repo")


NOTEBOOK_PAGE = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# An ipynb page"},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": "print(6 * 7)"},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_a_fixture_book_puts_colab_only_on_its_ipynb_page(tmp_path):
    from test_book import fixture_book

    book = fixture_book(tmp_path, "# A MyST page\n\n```{code-cell} ipython3\nprint(1)\n```\n")
    (book / "nb").mkdir()
    (book / "nb" / "nb.ipynb").write_text(json.dumps(NOTEBOOK_PAGE))
    with open(book / "_toc.yml", "a") as toc:
        toc.write("  - file: nb/nb\n")
    proc = build.build(book)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = book / "_build" / "html"
    for docname, rel in (("page", "page.md"), ("nb/nb", "nb/nb.ipynb")):
        links = launch_links((html / f"{docname}.html").read_text())
        assert links == expected_links(rel, book / "_config.yml"), (
            f"expected the fixture page {rel} to have the launch links "
            f"{expected_links(rel, book / '_config.yml')}, found {links}")
