"""A small Sphinx extension: every page free of console errors, drawn at first paint,
accessible and ready to share.

- sphinx-thebe writes its ``const THEBE_JS_URL`` script twice on each page, and the
  second copy throws a SyntaxError; with Thebe switched off the site needs neither its
  configuration nor its loader, so both are dropped, and any other duplicate inline
  script is written once.
- The theme logs an error when no colour mode was ever chosen; the default becomes
  ``auto`` (follow the reader's system setting).
- The theme's top navbar stays empty, so each page has one menu and one "On this page"
  button, the ones the theme's script binds (phone drawers, desktop sidebar toggle).
- Each widget's output gets the figure drawn at build time (``losslab.engine.first_paint``,
  the live figure's own JavaScript run under Node) in the place the live widget will take,
  so the page shows every plot at first paint, before any script has run. The widget state
  the page embeds loses what the site's runtime does not read (each figure's copy of the
  front-end module and its styles, which the site serves once as files).
- The theme puts a Colab button on every notebook page, but Colab opens only ``.ipynb``
  files: a page written in MyST markdown keeps its Binder button and loses the Colab one.
- Every page gets a favicon, a meta description and Open Graph tags (its first figure's
  PNG snapshot as preview image), and one viewport tag instead of three (Sphinx, docutils
  and the theme each write one). ``templates/`` overrides the theme's search and colour
  mode buttons so that each one's accessible name matches what it shows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes

from ..engine import first_paint

HERE = Path(__file__).parent
ENGINE_CSS = HERE.parent / "engine" / "static" / "lossplot.css"
DESCRIPTION_CHARS = 200
VIEWPORT = re.compile(r'\s*<meta name="viewport"[^>]*>')

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
VIEW_SCRIPT = re.compile(
    r'<script type="application/vnd.jupyter.widget-view\+json">(\{.*?\})</script>', re.S)


def _thebe_enabled(config) -> bool:
    launch = (config.html_theme_options or {}).get("launch_buttons", {}) or {}
    return bool(launch.get("thebe", False))


def _config_inited(app, config) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context
    # pydata-sphinx-theme (0.17) puts a search field in a top navbar unless told otherwise,
    # and with it a second menu and "On this page" button; its script then binds the hidden
    # pair, so the visible buttons open nothing on a phone and the desktop menu button
    # cannot hide the chapter list. The book theme's own header has both buttons and the
    # sidebar has the search field, so that navbar stays empty.
    options = dict(config.html_theme_options or {})
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options
    # The widget styles on every page from the start, for the build-time pictures; the
    # favicon and the accessible theme buttons (templates/) come with the package.
    config.html_static_path = [*config.html_static_path, str(ENGINE_CSS)]
    config.templates_path = [str(HERE / "templates"), *config.templates_path]
    if not config.html_favicon:
        config.html_favicon = str(HERE / "static" / "favicon.svg")


def _description(doctree) -> str:
    """The page's first paragraph as plain text, cut at a word near DESCRIPTION_CHARS."""
    if doctree is None:
        return ""
    for para in doctree.findall(nodes.paragraph):
        if not isinstance(para.parent, nodes.section):
            continue
        text = " ".join(para.astext().split())
        if len(text) < 40:
            continue
        if len(text) > DESCRIPTION_CHARS:
            text = text[:DESCRIPTION_CHARS].rsplit(" ", 1)[0] + "…"
        return text
    return ""


def _social_tags(app, pagename, context, doctree, first_image: str | None) -> str:
    """A meta description and Open Graph tags for the page."""
    from html import escape, unescape

    title = unescape(re.sub(r"<[^>]+>", "", context.get("title") or "")).strip()
    site = app.config.html_title or app.config.project or ""
    tags = []
    desc = _description(doctree)
    if desc:
        tags.append(("name", "description", desc))
        tags.append(("property", "og:description", desc))
    tags.append(("property", "og:title", title or site))
    tags.append(("property", "og:site_name", site))
    tags.append(("property", "og:type", "article" if pagename != "index" else "website"))
    if first_image:
        base = (app.config.html_baseurl or "").rstrip("/")
        url = f"{base}/{first_image}" if base else context["pathto"](first_image, 1)
        tags.append(("property", "og:image", url))
        tags.append(("property", "og:image:alt", f"The first figure of {title}"))
        tags.append(("name", "twitter:card", "summary_large_image"))
    return "".join(f'<meta {kind}="{key}" content="{escape(value)}" />\n'
                   for kind, key, value in tags)


def _first_figure_png(app, pagename: str) -> str | None:
    """Copy the snapshot PNG of the page's first widget next to the site; its path or None.

    The executed notebook (myst-nb's ``jupyter_execute`` folder) keeps every widget's PNG
    snapshot beside its widget view; the first one becomes the page's preview image.
    """
    import base64

    import nbformat

    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return None
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data and "application/vnd.jupyter.widget-view+json" in data:
                rel = f"_images/preview-{pagename.replace('/', '-')}.png"
                dest = Path(app.outdir) / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(base64.b64decode(data["image/png"]))
                return rel
    return None


def _build_finished(app, exception) -> None:
    """Keep one viewport tag per page: Sphinx, docutils and the theme each write one."""
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        first = VIEWPORT.search(text)
        if not first:
            continue
        rest = VIEWPORT.sub("", text[first.end():])
        if len(rest) != len(text) - first.end():
            page.write_text(text[:first.end()] + rest, encoding="utf-8")


def _drop_colab_unless_ipynb(context) -> None:
    if context.get("page_source_suffix") == ".ipynb":
        return
    for group in context.get("header_buttons") or []:
        if group.get("label") == "launch-buttons":
            group["buttons"] = [b for b in group["buttons"] if b.get("text") != "Colab"]


# What the site's runtime never reads from a figure's state: the front-end module and its
# styles (served once as files) and anywidget's own bookkeeping.
UNREAD = ("_esm", "_css", "_anywidget_id")


def _state_script(scripts):
    for js in scripts or []:
        attrs = getattr(js, "attributes", {}) if js is not None else {}
        if attrs.get("type") == WIDGET_STATE and attrs.get("body"):
            return js
    return None


def is_figure(model: dict) -> bool:
    """Whether a widget model's state is a losslab figure."""
    spec = model.get("state", {}).get("spec")
    return isinstance(spec, dict) and "panels" in spec and "controls" in spec


def _slim_state(js) -> dict:
    """Drop what the runtime never reads from the page's widget state; return the state."""
    doc = json.loads(js.attributes["body"])
    state = doc.get("state", {})
    for model in state.values():
        if is_figure(model):
            for key in UNREAD:
                model["state"].pop(key, None)
    # "</" written as "<\/" (the same JSON), so no text in a label can end the script early.
    js.attributes["body"] = json.dumps(doc, separators=(",", ":")).replace("</", "<\\/")
    return state


def _first_paint(body: str, state: dict, pagename: str) -> str:
    """Put each losslab figure's build-time picture where its live widget will render."""
    found = []
    for match in VIEW_SCRIPT.finditer(body):
        model = state.get(json.loads(match.group(1)).get("model_id", ""), {})
        if is_figure(model):
            uid = "llstatic-" + re.sub(r"[^A-Za-z0-9]+", "-", pagename) + f"-{len(found) + 1}"
            found.append((match, model["state"], uid))
    if not found:
        return body
    pictures = first_paint.figures_html([(st, uid) for _, st, uid in found])
    out, at = [], 0
    for (match, _, _), picture in zip(found, pictures):
        out.append(body[at:match.start()])
        out.append(f'<div class="ll-slot">{picture}{match.group(0)}</div>')
        at = match.end()
    out.append(body[at:])
    return "".join(out)


def _page_context(app, pagename, templatename, context, doctree) -> None:
    _drop_colab_unless_ipynb(context)
    context["metatags"] = (context.get("metatags") or "") + _social_tags(
        app, pagename, context, doctree, _first_figure_png(app, pagename))
    scripts = context.get("script_files")
    if not scripts:
        return
    state_js = _state_script(scripts)
    state = _slim_state(state_js) if state_js is not None else {}
    if state and "body" in context:
        context["body"] = _first_paint(context["body"], state, pagename)
    drop_thebe = not _thebe_enabled(app.config)
    seen: set = set()
    kept = []
    for js in scripts:
        filename = str(js) if js else ""
        body = getattr(js, "attributes", {}).get("body", "") if js is not None else ""
        if drop_thebe and ("sphinx-thebe" in filename or "THEBE_JS_URL" in body):
            continue
        key = (filename, body)
        if body and key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("config-inited", _config_inited)
    # After the other extensions have added their scripts for the page.
    app.connect("html-page-context", _page_context, priority=900)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
