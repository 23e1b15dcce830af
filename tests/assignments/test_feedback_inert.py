"""Feedback pages are inert whatever a submission puts in them.

A small batch (a hostile notebook for two assignments and an honest classmate) is graded through
``make grade``'s entry point under bubblewrap; every feedback file is parsed and must hold no
script, no event handler, no ``javascript:`` URL, no form, no meta refresh and nothing fetched
from another host, while the grade, the scores, the harmless text and the inline image stay.
The sanitizer itself is also checked on the raw attack strings, without grading.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from assignment_helpers import ROOT, grading_env, student_notebook, write_submission
from feedback_attacks import MARKDOWN_ATTACKS, PNG, hostile_feedback_notebook
from inert_html import active_content

from losslab.grading import feedback


class _Texts(HTMLParser):
    """The visible text and the image sources of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.skip += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)


def _read(html: str) -> _Texts:
    parser = _Texts()
    parser.feed(html)
    parser.close()
    return parser


def test_the_checker_sees_every_attack_in_the_raw_markdown():
    # The attack strings themselves are active: the check below is not vacuous.
    problems = active_content(MARKDOWN_ATTACKS)
    for needle in ("onerror", "javascript", "<script>", "<form>", "refresh", "track.png",
                   "protocol-relative", "srcset", "url(", "@import", "<iframe>", "<object>",
                   "<embed>", "<base>", "<link>", "ontoggle", "data: URL"):
        assert any(needle in problem for problem in problems), (needle, problems)


def test_sanitize_document_keeps_the_page_and_drops_the_attacks():
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title>"
            f"<style>.score {{ color: black; }}</style><script>alert(0)</script></head>"
            f"<body><h4>focal_loss (Score: 7.0 / 10.0)</h4><a href='#test_basic'>Test cell</a>"
            f"<div id='test_basic' class='panel'>{MARKDOWN_ATTACKS}</div>"
            f"<img src='data:image/png;base64,{PNG}' width=1 onerror=alert(1)></body></html>")
    clean = feedback.sanitize_document(page, trusted_styles=[".score { color: black; }"])
    assert active_content(clean) == []
    shown = _read(clean)
    text = "".join(shown.text)
    assert "focal_loss (Score: 7.0 / 10.0)" in text
    assert "rt-md-bold" in text and "rt-styled" in text and "rt-md-js-link" in text
    # The inline image stays; the tracker and the broken images lose their source.
    assert [src for src in shown.images if src] == [f"data:image/png;base64,{PNG}"]
    assert ".score { color: black; }" in clean
    assert "<a href=\"#test_basic\"" in clean


def test_a_style_not_from_the_template_is_dropped():
    page = ("<html><head><style>.ok{}</style></head><body>"
            "<style>body{background:red}</style><p>x</p></body></html>")
    clean = feedback.sanitize_document(page, trusted_styles=[".ok{}"])
    assert "background:red" not in clean and ".ok{}" in clean


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("feedback-inert")
    subs = base / "submitted"
    write_submission(subs, "rt-feedback-bce", "stable_bce", hostile_feedback_notebook())
    write_submission(subs, "rt-feedback-focal", "focal_loss",
                     hostile_feedback_notebook("focal_loss"))
    write_submission(subs, "classmate", "stable_bce", student_notebook("stable_bce", answers={}))
    course = base / "course"
    run = subprocess.run([sys.executable, "-m", "losslab.grading", "grade", "--submissions",
                          str(subs), "--out", str(course), "--jobs", "2"], cwd=ROOT,
                         env=grading_env(LOSSLAB_GRADING_SEED="5"), capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return course


def test_every_feedback_file_is_inert_and_keeps_the_grade(graded):
    files = sorted((graded / "feedback").rglob("*.html"))
    assert len(files) == 3, files
    with (graded / "grading_log.csv").open() as handle:
        scores = {(row["assignment"], row["student_id"]): float(row["score"])
                  for row in csv.DictReader(handle)}
    assert scores == {("stable_bce", "rt-feedback-bce"): 8.0, ("stable_bce", "classmate"): 8.0,
                      ("focal_loss", "rt-feedback-focal"): 10.0}
    for path in files:
        html = path.read_text()
        assert active_content(html) == [], (path, active_content(html)[:10])
        text = "".join(_read(html).text)
        score = scores[(path.parts[-2], path.parts[-3])]
        assert f"(Score: {score:.1f} / {score:.1f})" in text, text[:500]
        assert "Test cell" in text
    hostile = (graded / "feedback" / "rt-feedback-bce" / "stable_bce" / "stable_bce.html")
    shown = _read(hostile.read_text())
    text = "".join(shown.text)
    # Harmless content stays readable; the image stays, as an inline data: URI.
    assert "rt-md-bold" in text and "rt-outputs-done" in text and "rt-md-js-link" in text
    assert any(src.startswith("data:image/png;base64,") for src in shown.images)
