"""Formulas typeset at build time: MathJax 3 in Node draws each one as SVG into the page.

A Sphinx math renderer (``html_math_renderer = "losslab_svg"``) that replaces
``sphinx.ext.mathjax``: instead of shipping TeX and MathJax (about 1.2 MB) to every reader's
browser, the build runs MathJax once in Node (``math_svg.js``, npm ``mathjax``) and writes
the finished SVG. Each formula keeps its MathML beside the picture for screen readers
(MathJax's assistive MathML), follows the text colour (so the dark theme), takes no Tab
stop, and a wide display formula is scaled to the column instead of running off a phone's
screen. A formula MathJax cannot read fails the build with the TeX and MathJax's message.

One Node process serves the whole build; it is closed when the build ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from html import escape
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "math_svg.js"
NODE_MODULES = ROOT / "node_modules"
RENDERER = "losslab_svg"
CSS_FILE = "losslab-math.css"

# Our additions to MathJax's own stylesheet for its SVG output.
SITE_CSS = """
/* losslab: a display formula fits the column (scaled down if it must), never scrolls
   the page sideways; an equation number stays beside it. */
mjx-container[jax="SVG"][display="true"] { max-width: 100%; overflow: hidden; }
mjx-container[jax="SVG"][display="true"] > svg { max-width: 100%; height: auto; }
mjx-container[jax="SVG"] > svg { color: inherit; }
"""

logger = logging.getLogger(__name__)


class MathJaxSVG:
    """One MathJax process in Node: TeX in, SVG markup (with assistive MathML) out."""

    def __init__(self, node_modules: Path = NODE_MODULES):
        node = shutil.which("node")
        if node is None:
            raise ExtensionError(
                "Node.js is needed to typeset the formulas at build time: expected `node` "
                "on PATH (Debian: `apt-get install nodejs`)")
        if not (node_modules / "mathjax" / "es5" / "node-main.js").is_file():
            raise ExtensionError(
                f"MathJax is not installed: expected {node_modules / 'mathjax'}; run `npm ci`")
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self._proc = subprocess.Popen(
            [node, str(SCRIPT), str(node_modules)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, encoding="utf-8",
            bufsize=1)
        self._cache: dict[tuple[str, bool], str] = {}
        self.css = self._read().get("css", "")

    def _read(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise ExtensionError("MathJax (node math_svg.js) stopped: "
                                 + (self._stderr.read().strip() or "no message"))
        return json.loads(line)

    def render(self, tex: str, display: bool) -> str:
        """The ``<mjx-container>`` markup of ``tex``; ValueError with MathJax's message."""
        key = (tex, display)
        if key not in self._cache:
            self._proc.stdin.write(json.dumps({"tex": tex, "display": display}) + "\n")
            self._proc.stdin.flush()
            answer = self._read()
            if "error" in answer:
                raise ValueError(answer["error"])
            self._cache[key] = answer["html"]
        return self._cache[key]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc.stdout.close()
        self._stderr.close()


def _typesetter(app) -> MathJaxSVG:
    if getattr(app, "_losslab_mathjax", None) is None:
        app._losslab_mathjax = MathJaxSVG()
    return app._losslab_mathjax


def _render(self, node, tex: str, display: bool) -> str:
    try:
        return _typesetter(self.builder.app).render(tex, display)
    except ValueError as err:
        logger.warning("MathJax cannot typeset %r: %s", tex, err, location=node)
        return f'<code class="math-error">{escape(tex)}</code>'


def display_tex(node) -> str:
    """The TeX MathJax receives for a display node, as sphinx.ext.mathjax would send it."""
    text = node.astext()
    if node.get("nowrap") or node.get("no-wrap"):
        return text
    parts = [part for part in text.split("\n\n") if part.strip()]
    parts = [rf"\begin{{split}}{p}\end{{split}}" if r"\\" in p else p for p in parts]
    if len(parts) > 1:
        return r"\begin{align}\begin{aligned}" + r"\\".join(parts) + r"\end{aligned}\end{align}"
    return parts[0] if parts else ""


def visit_math(self, node) -> None:
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate nohighlight"))
    self.body.append(_render(self, node, node.astext(), display=False))
    self.body.append("</span>")
    raise nodes.SkipNode


def visit_displaymath(self, node) -> None:
    self.body.append(self.starttag(node, "div", CLASS="math notranslate nohighlight"))
    if node.get("number"):
        number = get_node_equation_number(self, node)
        self.body.append(f'<span class="eqno">({number})')
        self.add_permalink_ref(node, _("Link to this equation"))
        self.body.append("</span>")
    self.body.append(_render(self, node, display_tex(node), display=True))
    self.body.append("</div>\n")
    raise nodes.SkipNode


def _page_context(app, pagename, templatename, context, doctree) -> None:
    if app.config.html_math_renderer != RENDERER or doctree is None:
        return
    if app.env.get_domain("math").has_equations(pagename):
        app.add_css_file(CSS_FILE)


def _build_finished(app, exception) -> None:
    typesetter = getattr(app, "_losslab_mathjax", None)
    try:
        if exception is None and app.builder.format == "html" \
                and app.config.html_math_renderer == RENDERER:
            css = Path(app.outdir) / "_static" / CSS_FILE
            has_math = any(app.env.get_domain("math").data.get("has_equations", {}).values())
            if typesetter is None and has_math and not css.is_file():
                typesetter = _typesetter(app)
            if typesetter is not None:
                css.parent.mkdir(parents=True, exist_ok=True)
                css.write_text(typesetter.css + SITE_CSS, encoding="utf-8")
    finally:
        if typesetter is not None:
            typesetter.close()
            app._losslab_mathjax = None


def setup(app):
    app.add_html_math_renderer(RENDERER, (visit_math, None), (visit_displaymath, None))
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
