"""A small Sphinx extension that keeps every page of the site free of console errors.

- sphinx-thebe writes its ``const THEBE_JS_URL`` script twice on each page, and the
  second copy throws a SyntaxError; with Thebe switched off the site needs neither its
  configuration nor its loader, so both are dropped, and any other duplicate inline
  script is written once.
- The theme logs an error when no colour mode was ever chosen; the default becomes
  ``auto`` (follow the reader's system setting).
- The theme puts a Colab button on every notebook page, but Colab opens only ``.ipynb``
  files: a page written in MyST markdown keeps its Binder button and loses the Colab one.
"""

from __future__ import annotations


def _thebe_enabled(config) -> bool:
    launch = (config.html_theme_options or {}).get("launch_buttons", {}) or {}
    return bool(launch.get("thebe", False))


def _config_inited(app, config) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def _drop_colab_unless_ipynb(context) -> None:
    if context.get("page_source_suffix") == ".ipynb":
        return
    for group in context.get("header_buttons") or []:
        if group.get("label") == "launch-buttons":
            group["buttons"] = [b for b in group["buttons"] if b.get("text") != "Colab"]


def _page_context(app, pagename, templatename, context, doctree) -> None:
    _drop_colab_unless_ipynb(context)
    scripts = context.get("script_files")
    if not scripts:
        return
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
    return {"parallel_read_safe": True, "parallel_write_safe": True}
