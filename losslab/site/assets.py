"""Copy the JavaScript the static site serves itself into a folder.

Run as ``python -m losslab.site.assets DEST``. ``DEST/mathjax`` receives MathJax 3 (npm
``mathjax``) for the formulas; ``DEST/widgets`` receives:

- ``require.js`` (npm ``requirejs``), the module loader the widget embedder needs;
- ``embed-amd.js`` and its fonts (npm ``@jupyter-widgets/html-manager``), which renders
  widget state on a page without a kernel;
- ``anywidget.js``, anywidget's own front-end module from the installed pip package;
- ``widget-loader.js``, which tells requirejs to look for modules beside itself.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTML_MANAGER = ROOT / "node_modules" / "@jupyter-widgets" / "html-manager" / "dist"
REQUIREJS = ROOT / "node_modules" / "requirejs" / "require.js"
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5"
# The TeX-to-HTML bundle and the parts it loads on demand (fonts, menu, accessibility).
MATHJAX_PARTS = ["tex-chtml.js", "input", "output", "ui", "a11y", "adaptors", "sre"]
FONT_SUFFIXES = {".woff", ".woff2", ".ttf", ".eot", ".svg"}


def anywidget_module() -> Path:
    """The AMD build of anywidget's front end shipped inside the pip package."""
    import anywidget

    path = Path(anywidget.__file__).parent / "nbextension" / "index.js"
    if not path.is_file():
        raise FileNotFoundError(f"anywidget's front-end module is missing: expected {path}")
    return path


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
    """Copy the widget modules into ``dest`` (created if needed); return the paths written."""
    missing = [p for p in (HTML_MANAGER / "embed-amd.js", REQUIREJS) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            "the npm packages are not installed; run `npm ci` (or `make assets`) first. "
            f"Missing: {', '.join(str(p) for p in missing)}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    pairs = [
        (REQUIREJS, dest / "require.js"),
        (HTML_MANAGER / "embed-amd.js", dest / "embed-amd.js"),
        (anywidget_module(), dest / "anywidget.js"),
        (Path(__file__).parent / "static" / "widget-loader.js", dest / "widget-loader.js"),
    ]
    # The embedder asks for its icon fonts beside the module path requirejs knows it by.
    fonts = dest / "@jupyter-widgets" / "html-manager" / "dist"
    fonts.mkdir(parents=True, exist_ok=True)
    pairs += [(f, fonts / f.name) for f in sorted(HTML_MANAGER.iterdir())
              if f.suffix in FONT_SUFFIXES]
    for src, dst in pairs:
        shutil.copyfile(src, dst)
    return [dst for _, dst in pairs]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m losslab.site.assets DEST", file=sys.stderr)
        return 2
    written = copy_assets(Path(argv[0]))
    print(f"copied {len(written)} site assets into {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
