"""Feedback pages that cannot act when they are opened.

A feedback page shows what a student wrote and what their code printed, and it is opened by the
student and by the instructor (in a browser, in formgrader, in JupyterHub, where a script would
get the instructor's Jupyter origin). nbgrader renders markdown cells as raw HTML and writes
output metadata (an image's ``width``) into attributes unquoted, so the rendered page is cleaned
as the last step before it is written, by an allow-list sanitizer (nh3, the Python binding of
the Rust ``ammonia`` crate, which parses HTML as browsers do):

- only text, layout and table elements, links and images stay; no script, style, form, frame,
  object, embed, base, link or meta element of the student's survives, nor any event handler;
- an image's source must be an inline ``data:image/(png|jpeg|gif)`` URI, a link's target a
  fragment of the page or an ``http(s):``/``mailto:`` address (never ``javascript:`` or
  ``data:``); no other attribute carries a URL, and no ``style`` attribute is kept;
- the page's CSS is the template's own: a ``<style>`` element is kept only when the same
  template renders it for an empty notebook, so nothing a student wrote can reach it;
- the page carries a Content-Security-Policy that allows no script, no connection and no
  resource from anywhere but the page itself, in case a browser ever parses it differently.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from html.parser import HTMLParser

import nbformat
import nh3
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import NbGraderPreprocessor

from .cells import HIDDEN_REGION, VERDICT_ENAME, is_test_cell

TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col",
    "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li",
    "main", "mark", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span", "strong",
    "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    "var", "wbr",
}
# Removed with everything inside them (the rest of an unknown element's text is kept).
DROPPED_WITH_CONTENT = {"script", "style", "title", "template", "noscript", "iframe", "object",
                        "embed", "svg", "math", "select", "textarea", "button", "form"}
ATTRIBUTES = {
    "*": {"id", "class", "title", "lang", "dir", "role"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "details": {"open"},
}
URL_SCHEMES = {"http", "https", "mailto", "data"}
DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", re.ASCII)
LINK = re.compile(r"(?:#|https?://|mailto:)", re.IGNORECASE)
CONTROLS = re.compile(r"[\x00-\x20\x7f]+")
SIZE = re.compile(r"\d{1,5}(?:\.\d+)?%?")
POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
          "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


def _attribute(element: str, attribute: str, value: str) -> str | None:
    """nh3's per-attribute filter: URLs and sizes by our stricter rules (None drops it)."""
    if attribute == "src":
        return value if element == "img" and DATA_IMAGE.fullmatch(value.strip()) else None
    if attribute == "href":
        compact = CONTROLS.sub("", value)
        return value if element == "a" and LINK.match(compact) else None
    if attribute in ("width", "height"):
        return value if SIZE.fullmatch(value.strip()) else None
    return value


def clean_fragment(markup: str) -> str:
    """``markup`` with everything that could run, send, redirect or fetch removed."""
    return nh3.clean(
        markup,
        tags=TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=_attribute,
        url_schemes=URL_SCHEMES,
        strip_comments=True,
        link_rel="noopener noreferrer",
    )


class _Styles(HTMLParser):
    """The text of every ``<style>`` element, and the ``<title>``, of a trusted document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.styles: list[str] = []
        self.title = ""
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "title"):
            self._in = tag
            if tag == "style":
                self.styles.append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.styles[-1] += data
        elif self._in == "title":
            self.title += data


def template_styles(trusted_document: str) -> tuple[list[str], str]:
    """The styles and title of a page rendered from no student content at all."""
    parser = _Styles()
    parser.feed(trusted_document)
    parser.close()
    return parser.styles, parser.title.strip()


def sanitize_document(document: str, trusted_styles: Iterable[str] = (), title: str = "") -> str:
    """A whole page rebuilt from ``document``: its body cleaned by :func:`clean_fragment`,
    the ``trusted_styles`` (the template's CSS) in its head, and a policy that forbids scripts
    and requests to anywhere else."""
    styles = "".join(f"<style>\n{css}\n</style>\n" for css in trusted_styles
                     if "</style" not in css.lower())
    body = clean_fragment(document)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{POLICY}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n{styles}</head>\n<body>\n{body}\n</body>\n"
            "</html>\n")


class InertFeedbackExporter(HTMLExporter):
    """nbgrader's feedback page (its ``feedback`` template, set by ``GenerateFeedback``), made
    inert: the rendered page goes through :func:`sanitize_document` before it is written."""

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        # The same template with no cell at all: whatever <style> it holds is the template's.
        empty = nbformat.v4.new_notebook(metadata={})
        trusted = self.template.render(nb=empty, resources=resources)
        styles, title = template_styles(trusted)
        return sanitize_document(output, styles, title), resources


class SanitizeFeedback(NbGraderPreprocessor):
    """nbgrader's first feedback step: remove hidden test regions from every cell and keep
    only the judge's verdicts in test cells."""

    def preprocess_cell(self, cell, resources, index):
        if "BEGIN HIDDEN TESTS" in cell.source:
            cell.source = HIDDEN_REGION.sub("", cell.source).rstrip("\n")
        if is_test_cell(cell):
            cell.outputs = [
                output for output in cell.get("outputs", [])
                if output.get("output_type") == "error" and output.get("ename") == VERDICT_ENAME
            ]
        return cell, resources
