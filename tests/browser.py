"""Helpers for the browser tests: serve the built site under a sub-path, drive Chromium."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

SUB_PATH = "/loss-functions-live/"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]


def chromium_path() -> str:
    """Debian's Chromium; the tests never download a browser of their own."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "Chromium is not installed: expected Debian's `chromium` package on PATH "
        "(`apt-get install chromium`; .ci/run installs it)"
    )


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site only under SUB_PATH, as a project site on GitHub Pages is."""

    def translate_path(self, path):
        parsed = urlparse(path).path
        if not parsed.startswith(SUB_PATH):
            return str(Path(self.directory) / "__outside_the_sub_path__")
        return super().translate_path("/" + parsed[len(SUB_PATH):])

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 under SUB_PATH; yield the site's base URL."""
    handler = functools.partial(_Handler, directory=str(directory))
    socketserver.TCPServer.allow_reuse_address = True
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}{SUB_PATH}"
        finally:
            server.shutdown()


@dataclass
class PageLog:
    """What a page did while loading: console errors, page errors, outside requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def browser() -> Iterator:
    """A headless Debian Chromium under Playwright, with a fresh profile folder."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="losslab-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def open_page(context, url: str, log: PageLog, color_scheme: str | None = None,
              block: tuple[str, ...] = ()):
    """Open ``url`` in a new tab, blocking and recording any request to another host.

    ``color_scheme`` ("light" or "dark") is the system setting the page sees (the site
    follows it); requests whose URL ends with one of ``block`` are refused.
    """
    page = context.new_page()
    if color_scheme:
        page.emulate_media(color_scheme=color_scheme)
    base_host = urlparse(url).netloc

    def on_route(route):
        req_url = route.request.url
        parsed = urlparse(req_url)
        if block and parsed.path.endswith(block):
            route.abort()
        elif parsed.scheme in ("data", "blob") or parsed.netloc == base_host:
            route.continue_()
        else:
            log.outside_requests.append(req_url)
            route.abort()

    page.route("**/*", on_route)
    page.on("console", lambda m: m.type == "error" and log.console_errors.append(m.text))
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.on("requestfailed", lambda r: urlparse(r.url).path.endswith(block) or
            log.failed_requests.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and log.failed_requests.append(
        f"{r.url} HTTP {r.status}"))
    page.goto(url, wait_until="load")
    return page


AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """Run axe-core (npm, pinned; injected from node_modules) on ``page``, every rule on.

    Returns ``[{"id", "impact", "help", "targets"}]`` for violations of the given impacts.
    """
    if not AXE.is_file():
        raise RuntimeError(f"axe-core is not installed: expected {AXE}; run `npm ci`")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        // Experimental rules too (label-content-name-mismatch is one): they are off by default.
        const rules = Object.fromEntries(axe.getRules(['experimental'])
            .map(r => [r.ruleId, { enabled: true }]));
        const r = await axe.run(document, { resultTypes: ['violations'], rules });
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' +
                                                (n.failureSummary || '').slice(0, 160))}));
    }""")
    return [v for v in found if v["impact"] in impacts]
