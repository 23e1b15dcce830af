"""Copy the JavaScript the static site serves itself into a folder.

Run as ``python -m losslab.site.assets DEST``. ``DEST/mathjax`` receives MathJax 3 (npm
``mathjax``) for the formulas; ``DEST/widgets`` receives the widget runtime, two small ES
modules of this package:

- ``lossplot.js``, the figures' front end (the same module anywidget runs in JupyterLab);
- ``widget-loader.js``, which brings every figure on a page to life from the widget state
  the page embeds, with no kernel, no module loader and no widget manager.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE_STATIC = ROOT / "losslab" / "engine" / "static"
RUNTIME = [ENGINE_STATIC / "lossplot.js", Path(__file__).parent / "static" / "widget-loader.js"]
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5"
# The TeX-to-HTML bundle and the parts it loads on demand (fonts, menu, accessibility).
MATHJAX_PARTS = ["tex-chtml.js", "input", "output", "ui", "a11y", "adaptors", "sre"]


def copy_assets(root: Path) -> list[Path]:
    """Copy every asset into ``root/widgets`` and ``root/mathjax``; return the files written."""
    return copy_widget_assets(root / "widgets") + copy_mathjax(root / "mathjax")


def copy_mathjax(dest: Path) -> list[Path]:
    """Copy the parts of MathJax the pages use into ``dest``; return the files written."""
    if not (MATHJAX / "tex-chtml.js").is_file():
        raise FileNotFoundError(
            f"MathJax is not installed: expected {MATHJAX / 'tex-chtml.js'}; run `npm ci`"
        )
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for part in MATHJAX_PARTS:
        src = MATHJAX / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        else:
            shutil.copyfile(src, dest / part)
    return [p for p in dest.rglob("*") if p.is_file()]


def copy_widget_assets(dest: Path) -> list[Path]:
    """Copy the widget runtime into ``dest`` (emptied first); return the paths written."""
    missing = [p for p in RUNTIME if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the widget runtime is missing: {', '.join(map(str, missing))}")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    written = []
    for src in RUNTIME:
        shutil.copyfile(src, dest / src.name)
        written.append(dest / src.name)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m losslab.site.assets DEST", file=sys.stderr)
        return 2
    written = copy_assets(Path(argv[0]))
    print(f"copied {len(written)} site assets into {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
