"""The figures as they are before any script runs, drawn by the live plot's own JavaScript.

The site puts this markup on the page at build time, so each figure is visible at first
paint; it is written by ``static/lossplot.js`` (run under Node by ``static/render-static.mjs``),
the very code that draws the live figure, so the picture and the live plot cannot drift.
When the live figure has drawn, it takes this picture's place (``.ll-slot`` in
``lossplot.css``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

RENDERER = Path(__file__).parent / "static" / "render-static.mjs"
TIMEOUT_S = 120


def node_path() -> str:
    """The Node.js the build uses (it also installs the site's npm packages)."""
    found = shutil.which("node")
    if not found:
        raise RuntimeError(
            "Node.js is needed to draw the figures at build time: expected `node` on PATH "
            "(Debian: `apt-get install nodejs npm`)")
    return found


def figures_html(items: Sequence[tuple[Mapping, str]]) -> list[str]:
    """The build-time markup of each ``(widget state, uid)``: one Node run for them all.

    ``state`` is a figure's widget state (``spec``, ``data``, ``summary`` and ``c0``..``c3``);
    ``uid`` prefixes the ids inside its markup and must be unique on the page.
    """
    if not items:
        return []
    request = json.dumps({"items": [
        {"state": {k: v for k, v in state.items() if k in STATE_KEYS}, "uid": uid}
        for state, uid in items]})
    proc = subprocess.run([node_path(), str(RENDERER)], input=request, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"drawing the figures with {RENDERER.name} failed "
                           f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout)
    if not isinstance(out, list) or len(out) != len(items):
        raise RuntimeError(f"{RENDERER.name} returned {type(out).__name__} for "
                           f"{len(items)} figures")
    return out


def figure_html(state: Mapping, uid: str) -> str:
    """The build-time markup of one figure (see :func:`figures_html`)."""
    return figures_html([(state, uid)])[0]


STATE_KEYS = ("spec", "data", "summary", "c0", "c1", "c2", "c3")
