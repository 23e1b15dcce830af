"""The book as a build: warnings and failing cells fail it; the built site is self-contained."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from test_site_browser import toc_files

from losslab.site import build

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"

CHAPTER_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def fixture_book(tmp_path: Path, body: str) -> Path:
    """A one-chapter book with the project's own configuration."""
    book = tmp_path / "book"
    (book / "site_assets").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    shutil.copy(ROOT / "site_assets" / "losslab-site.css", book / "site_assets")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n")
    (book / "intro.md").write_text("# A fixture book\n\nIt has one page.\n")
    (book / "page.md").write_text(CHAPTER_HEADER + body)
    return book


def test_a_good_fixture_book_builds(tmp_path):
    book = fixture_book(tmp_path, "# Page\n\n```{code-cell} ipython3\nprint(1 + 1)\n```\n")
    proc = build.build(book)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2" in (book / "_build" / "html" / "page.html").read_text()


def test_a_failing_cell_fails_the_build(tmp_path):
    book = fixture_book(tmp_path, "# Page\n\n```{code-cell} ipython3\n1 / 0\n```\n")
    proc = build.build(book)
    assert proc.returncode != 0
    assert "ZeroDivisionError" in proc.stdout + proc.stderr


def test_a_warning_fails_the_build(tmp_path):
    book = fixture_book(tmp_path, "# Page\n\nSee {ref}`a-label-nobody-defined`.\n")
    proc = build.build(book)
    assert proc.returncode != 0
    assert "a-label-nobody-defined" in proc.stdout + proc.stderr


def test_every_toc_page_is_built():
    assert (HTML / "index.html").is_file(), "run `make book` first"
    missing = [f for f in toc_files() if not (HTML / f"{f}.html").is_file()]
    assert missing == []


EXTERNAL = re.compile(r"""<(?:script|img|iframe|source)[^>]*\ssrc=["'](https?:)?//"""
                      r"""|<link[^>]*rel=["'](?:stylesheet|preload|modulepreload)["'][^>]*"""
                      r"""href=["'](https?:)?//""", re.I)


def test_no_page_loads_anything_from_another_host():
    pages = [HTML / f"{f}.html" for f in toc_files()]
    offenders = {p.name: EXTERNAL.findall(p.read_text()) for p in pages}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_ruff_passes():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_solutions_never_reach_the_site():
    """The student releases are pages; the instructor sources and hidden tests are not."""
    assert not (HTML / "solutions").exists()
    leaks = []
    for page in HTML.rglob("*.html"):
        text = page.read_text(errors="ignore")
        if "BEGIN SOLUTION" in text or "BEGIN HIDDEN TESTS" in text:
            leaks.append(str(page.relative_to(HTML)))
    assert leaks == []
    for f in toc_files():
        if f.startswith("exercises/"):
            assert (HTML / f"{f}.html").is_file(), f"{f} is not on the site"


def test_every_page_has_one_viewport_a_favicon_and_sharing_tags():
    for f in toc_files():
        page = HTML / f"{f}.html"
        text = page.read_text()
        head = text[:text.find("</head>")]
        viewports = head.count('name="viewport"')
        assert viewports == 1, f"{f}: {viewports} viewport tags"
        icon = re.search(r'<link rel="icon" href="([^"]+)"', head)
        assert icon and (page.parent / icon.group(1)).is_file(), f"{f}: no favicon on the site"
        for tag in ('property="og:title"', 'property="og:site_name"'):
            assert tag in head, f"{f}: no {tag}"
        if f.startswith("chapters/"):
            desc = re.search(r'<meta name="description" content="([^"]{40,})"', head)
            assert desc, f"{f}: no meta description"
            assert re.search(r'<meta property="og:description" content="[^"]{40,}"', head)
            if "ll-slot" in text:
                image = re.search(r'<meta property="og:image" content="([^"]+)"', head)
                assert image, f"{f} has a figure but no preview image"
                png = (page.parent / image.group(1)).read_bytes()
                assert png[:8] == b"\x89PNG\r\n\x1a\n", f"{f}: the preview is not a PNG"


def test_every_widget_is_on_the_page_as_a_picture_before_any_script_runs():
    """Each widget view comes with its figure drawn at build time, in the same slot."""
    for f in toc_files():
        text = (HTML / f"{f}.html").read_text()
        views = text.count("application/vnd.jupyter.widget-view+json")
        slots = re.findall(r'<div class="ll-slot"><div class="ll-static[^"]*">(.*?)'
                           r'<script type="application/vnd.jupyter.widget-view\+json">',
                           text, re.S)
        assert len(slots) == views, f"{f}: {views} widgets, {len(slots)} build-time pictures"
        for slot in slots:
            assert "<svg " in slot and "ll-desc" in slot
            assert re.search(r'<path class="ll-series[^"]*" [^>]*d="M[\d.]+,', slot), (
                f"{f}: a build-time picture has no curve")
