"""What a page of the built site costs a reader on a first visit, by type of content.

A page is loaded in Chromium with the cache off; every response from the site is mapped
back to its file in the build and weighed raw and gzip-compressed (level 6, what a web
server sends), so the figures do not depend on the test server (which compresses nothing).
The widget state the page embeds is counted apart from the rest of its HTML, and the
widget runtime (``_static/widgets/``) apart from the rest of its JavaScript.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from browser import SUB_PATH

TYPES = ("html", "widget state", "js", "css", "fonts", "images", "other")
FONT = {".woff", ".woff2", ".ttf", ".otf", ".eot"}
IMAGE = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".webp"}
STATE = re.compile(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>',
                   re.S)
RUNTIME_DIR = "_static/widgets/"


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6, mtime=0))


@dataclass
class Weight:
    """Bytes of one page by type: ``raw[type]`` and ``compressed[type]``, and the files."""

    raw: dict = field(default_factory=lambda: dict.fromkeys(TYPES, 0))
    compressed: dict = field(default_factory=lambda: dict.fromkeys(TYPES, 0))
    runtime_raw: int = 0
    runtime_compressed: int = 0
    files: list = field(default_factory=list)

    def add(self, kind: str, data: bytes) -> int:
        self.raw[kind] += len(data)
        size = gz(data) if data else 0
        self.compressed[kind] += size
        return size

    @property
    def total_compressed(self) -> int:
        return sum(self.compressed.values())


def kind_of(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in (".js", ".mjs"):
        return "js"
    if suffix == ".css":
        return "css"
    if suffix in FONT:
        return "fonts"
    if suffix in IMAGE:
        return "images"
    return "other"


def weigh(urls: list[str], html_root: Path) -> Weight:
    """Weigh the site's files behind ``urls`` (each counted once; others ignored)."""
    w = Weight()
    seen = set()
    for url in urls:
        path = unquote(urlparse(url).path)
        if not path.startswith(SUB_PATH) or path in seen:
            continue
        seen.add(path)
        rel = path[len(SUB_PATH):] or "index.html"
        file = html_root / rel
        if file.is_dir():
            file = file / "index.html"
        if not file.is_file():
            continue
        data = file.read_bytes()
        kind = kind_of(file.name)
        if kind == "html":
            text = data.decode("utf-8", errors="replace")
            state = "".join(STATE.findall(text)).encode()
            w.add("widget state", state)
            w.add("html", STATE.sub("", text).encode())
        else:
            size = w.add(kind, data)
            if rel.startswith(RUNTIME_DIR):
                w.runtime_raw += len(data)
                w.runtime_compressed += size
        w.files.append((rel, kind, len(data)))
    return w


def page_weight(context, url: str, html_root: Path, ready=None) -> Weight:
    """Load ``url`` with the cache off in a new tab of ``context`` and weigh what it fetched.

    ``ready(page)``, if given, waits for what must have loaded (the live widgets, say).
    """
    page = context.new_page()
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        urls: list[str] = []
        page.on("response", lambda r: r.ok and urls.append(r.url))
        page.goto(url, wait_until="load")
        if ready is not None:
            ready(page)
        page.wait_for_timeout(500)  # what loads after the load event (fonts, MathJax parts)
        cdp.detach()
        return weigh(urls, html_root)
    finally:
        page.close()
