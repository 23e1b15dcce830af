"""What a first visit to each page loads, by type: bytes as served and gzip-compressed.

Run with ``make bench`` (after ``make book``), or ``python bench/page_weight.py [SITE]`` for
another built site folder (to compare two builds). Each page is opened in headless Chromium;
every resource it used (the page, scripts, styles, fonts, images,
and what they load in turn) is counted once by type, with its size as served by the local
server (uncompressed) and gzip-compressed at level 6, as a static host would send it.
"""

from __future__ import annotations

import gzip
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import SUB_PATH, PageLog, browser, open_page, serve  # noqa: E402
from test_site_browser import site_pages  # noqa: E402

TYPES = {".js": "script", ".mjs": "script", ".css": "style", ".woff": "font", ".woff2": "font",
         ".ttf": "font", ".otf": "font", ".eot": "font", ".png": "image", ".svg": "image",
         ".jpg": "image", ".gif": "image", ".html": "html"}
ORDER = ["html", "script", "style", "font", "image", "other"]


def kind(path: str) -> str:
    return TYPES.get(Path(path).suffix.lower(), "other")


def fetched(context, base: str, name: str) -> list[str]:
    """The URL paths a fresh load of ``name`` fetched (the page first)."""
    page = open_page(context, base + name, PageLog())
    try:
        page.wait_for_timeout(1500)  # what loads after the load event (MathJax, fonts, ...)
        return page.evaluate("""() => [performance.getEntriesByType('navigation')[0].name]
            .concat(performance.getEntriesByType('resource').map(e => e.name))""")
    finally:
        page.close()


def weigh(site: Path, pages: list[str]) -> dict[str, dict[str, list[int]]]:
    """``{page: {type: [bytes, gzip bytes, count]}}`` for each page's first visit."""
    out: dict[str, dict[str, list[int]]] = {}
    with serve(site) as base, browser() as context:
        for name in pages:
            totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            for url in dict.fromkeys(fetched(context, base, name)):
                path = unquote(urlparse(url).path)
                if not path.startswith(SUB_PATH):
                    continue
                file = site / path[len(SUB_PATH):]
                if file.is_dir():
                    file = file / "index.html"
                if not file.is_file():
                    continue
                data = file.read_bytes()
                entry = totals[kind(file.name)]
                entry[0] += len(data)
                entry[1] += len(gzip.compress(data, compresslevel=6, mtime=0))
                entry[2] += 1
            out[name] = dict(totals)
    return out


def report(weights: dict[str, dict[str, list[int]]]) -> None:
    print("\nfirst-visit bytes by type: as served / gzip (files)")
    print(f"{'page':34}" + "".join(f"{t:>24}" for t in ORDER) + f"{'total gzip':>12}")
    for name, totals in weights.items():
        cells = []
        for t in ORDER:
            raw, gz, n = totals.get(t, [0, 0, 0])
            cells.append(f"{raw / 1000:>9.1f}k/{gz / 1000:>7.1f}k ({n:>2})")
        total = sum(v[1] for v in totals.values())
        print(f"{name:34}" + "".join(f"{c:>24}" for c in cells) + f"{total / 1000:>11.1f}k")


def main(argv: list[str]) -> None:
    site = Path(argv[0]) if argv else ROOT / "_build" / "html"
    if not (site / "index.html").is_file():
        raise SystemExit(f"no built site in {site}: run `make book` first")
    report(weigh(site, [p for p in site_pages() if (site / p).is_file()]))


if __name__ == "__main__":
    main(sys.argv[1:])
