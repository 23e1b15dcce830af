"""Walk a parsed HTML document and list everything in it that could act when it is opened.

Used on every feedback file the grader writes. The document is parsed (``html.parser``, which
tokenises tags and attributes as a browser does, unquoted values included), never searched as a
string: what counts is which elements and attributes exist, not which characters appear.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements that run code, load or embed another document, send data, or redirect.
ACTIVE_ELEMENTS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet",
                   "form", "input", "button", "select", "textarea", "base", "link", "portal",
                   "noscript", "template", "math-script", "handler", "listener"}
# Attributes whose value the browser fetches or follows without a click.
FETCHED = {"src", "srcset", "poster", "background", "data", "action", "formaction", "lowsrc",
           "dynsrc", "ping", "manifest", "codebase", "archive", "longdesc", "xlink:href",
           "imagesrcset"}
CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]+")
CSS_URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
CSS_IMPORT = re.compile(r"@import", re.I)
SAFE_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif);base64,[a-z0-9+/=\s]*$", re.I)


def _scheme_of(value: str) -> str:
    """What a browser would take as the URL's scheme (after dropping controls and spaces)."""
    compact = CONTROL_OR_SPACE.sub("", value).lower()
    return compact.split(":", 1)[0] if ":" in compact.split("/", 1)[0] else ""


def _fetches_remotely(value: str) -> bool:
    """True unless the URL is an inline image, a fragment, or has no host and no scheme."""
    compact = CONTROL_OR_SPACE.sub("", value)
    if not compact or compact.startswith("#"):
        return False
    if SAFE_DATA_IMAGE.match(compact):
        return False
    # A scheme (http:, javascript:, data:text/html...) or a host (//evil) makes it active.
    return bool(_scheme_of(compact)) or compact.startswith(("//", "\\\\", "/\\", "\\/"))


def _css_problems(css: str, where: str) -> list[str]:
    found = []
    if CSS_IMPORT.search(css):
        found.append(f"{where}: CSS @import")
    for _, url in CSS_URL.findall(css):
        if _fetches_remotely(url):
            found.append(f"{where}: CSS url({url[:80]!r})")
    if re.search(r"expression\s*\(|behavior\s*:|-moz-binding", css, re.I):
        found.append(f"{where}: CSS that runs code")
    return found


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.stack: list[str] = []
        self.styles: list[str] = []
        self.elements = 0

    def handle_starttag(self, tag, attrs):
        self._element(tag, attrs)
        if tag not in ("img", "br", "hr", "meta", "wbr", "col", "area", "source", "track"):
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self._element(tag, attrs)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "style":
            self.problems += _css_problems(data, "<style>")

    def _element(self, tag: str, attrs) -> None:
        self.elements += 1
        where = f"<{tag}>"
        if tag in ACTIVE_ELEMENTS:
            self.problems.append(f"{where} element")
        values = {name: (value or "") for name, value in attrs}
        if tag == "meta" and "http-equiv" in values:
            equiv = values["http-equiv"].strip().lower()
            if equiv == "refresh" or equiv == "set-cookie":
                self.problems.append(f"{where} http-equiv={equiv}")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problems.append(f"{where} event handler {name}={value[:80]!r}")
            scheme = _scheme_of(value)
            if scheme in ("javascript", "vbscript", "livescript"):
                self.problems.append(f"{where} {name} is a {scheme}: URL")
            if name in FETCHED or (name == "href" and tag in ("link", "image", "use", "feimage")):
                if name == "srcset" or name == "imagesrcset":
                    urls = [part.strip().split(" ")[0] for part in value.split(",")]
                else:
                    urls = [value]
                for url in urls:
                    if _fetches_remotely(url):
                        self.problems.append(f"{where} {name}={url[:80]!r} is fetched")
            if name == "href" and scheme == "data":
                self.problems.append(f"{where} href is a data: URL")
            if name == "style":
                self.problems += _css_problems(value, f"{where} style attribute")


def active_content(html: str) -> list[str]:
    """Everything in ``html`` that could run, send, redirect or fetch from another host when
    the document is opened; an empty list for an inert document."""
    walker = _Walker()
    walker.feed(html)
    walker.close()
    return walker.problems


def element_count(html: str) -> int:
    walker = _Walker()
    walker.feed(html)
    walker.close()
    return walker.elements
