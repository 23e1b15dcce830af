"""The theme's icons drawn into the page at build time, without Font Awesome's 1.5 MB script.

pydata-sphinx-theme loads ``fontawesome.js`` (Font Awesome Free, 1.49 MB) on every page to
swap each ``<i class="fa-solid fa-bars">`` for an inline SVG in the browser; the site uses
about fifteen of its icons. After the build, every page gets those SVGs written in
directly, taken from the same ``fontawesome.js`` the installed theme ships (so the icons
are the theme's own, at its version), and the script tag is dropped. The few glyphs the
theme's stylesheet draws with the icon font (admonition titles, download links) become
SVG masks in ``losslab-icons.css``, so the 156 kB font is not fetched either. The theme
has no option for this, which is why it is done here.

Font Awesome Free icons: CC BY 4.0, Fonticons, Inc. (https://fontawesome.com/license/free).
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from urllib.parse import quote

from sphinx.errors import ExtensionError

STYLES = {"fa-solid": "fas", "fas": "fas", "fa-regular": "far", "far": "far",
          "fa-brands": "fab", "fab": "fab"}
FA_SCRIPT = re.compile(r'\s*<script[^>]*src="[^"]*_static/scripts/fontawesome\.js[^"]*"[^>]*>'
                       r'\s*</script>')
# An icon element as the theme writes it: <i class="fa-solid fa-bars ..." ...></i> (or span).
ICON = re.compile(r'<(i|span)\s+([^>]*?\bclass="([^"]*\bfa-[a-z0-9-]+[^"]*)"[^>]*)>\s*</\1>')
ATTR = re.compile(r'([a-zA-Z_:][-a-zA-Z0-9_:.]*)="([^"]*)"')
NOT_ICON_NAMES = {"fa-solid", "fa-regular", "fa-brands", "fa-lg", "fa-xs", "fa-sm", "fa-xl",
                  "fa-fw", "fa-2x", "fa-3x", "fa-spin", "fa-pulse"}
PACK_START = re.compile(r'var [A-Za-z_$]+=\{')
PACK_STYLE = re.compile(r'\bd\("(fa[srb])",')
ENTRY = re.compile(r'(?:"([a-z0-9-]+)"|\b([a-z][a-z0-9]*)):\[(\d+),(\d+),\[[^\]]*\],'
                   r'"([0-9a-f]+)","(M[^"]+)"\]')
# The theme's stylesheet draws some icons (admonition titles, downloads, external links)
# as glyphs of the icon font: a rule whose content is one of its --pst-icon-* variables.
CSS_RULE = re.compile(r'([^{}]+)\{([^{}]*content:var\(--pst-icon-([a-z-]+)\)[^{}]*)\}')
CSS_VAR = re.compile(r'--pst-icon-([a-z-]+):(?:"\\?([^"]*)"|var\(--pst-icon-([a-z-]+)\))')
CSS_FILE = "losslab-icons.css"


def theme_fontawesome() -> Path:
    """The ``fontawesome.js`` the installed pydata-sphinx-theme serves."""
    import pydata_sphinx_theme

    path = (Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme"
            / "static" / "scripts" / "fontawesome.js")
    if not path.is_file():
        raise ExtensionError(f"pydata-sphinx-theme's Font Awesome is missing: expected {path}")
    return path


def load_icons(script: Path) -> dict[tuple[str, str], tuple[int, int, str]]:
    """``{(style, name): (width, height, path data)}`` for every icon in ``script``."""
    text = script.read_text(encoding="utf-8")
    icons: dict[tuple[str, str], tuple[int, int, str]] = {}
    # Each style's icons are one object literal, handed to the theme's define call after it.
    for start in PACK_START.finditer(text):
        define = PACK_STYLE.search(text, start.end())
        if define is None:
            continue
        style = define.group(1)
        for m in ENTRY.finditer(text, start.end(), define.start()):
            name = m.group(1) or m.group(2)
            icons.setdefault((style, name), (int(m.group(3)), int(m.group(4)), m.group(6)))
            icons.setdefault((style, "U+" + m.group(5)), icons[(style, name)])
    if not icons:
        raise ExtensionError(f"found no icons in {script}: its format is not the one expected")
    return icons


def _svg(attrs: str, classes: str, icons) -> str | None:
    names = classes.split()
    style = next((STYLES[c] for c in names if c in STYLES), "fas")
    wanted = [c[3:] for c in names if c.startswith("fa-") and c not in NOT_ICON_NAMES
              and c not in STYLES]
    for name in wanted:
        if (style, name) in icons:
            width, height, path = icons[(style, name)]
            break
    else:
        return None
    kept = [(k, v) for k, v in ATTR.findall(attrs) if k not in ("class", "aria-hidden")]
    extra = "".join(f' {k}="{v}"' for k, v in kept)
    return (f'<svg class="svg-inline--fa {escape(classes)}" aria-hidden="true" '
            f'focusable="false" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {width} {height}"{extra}><path fill="currentColor" d="{path}"/>'
            f'</svg>')


def inline_icons(html: str, icons) -> tuple[str, list[str]]:
    """``html`` with the script dropped and each icon drawn; also the icons not found."""
    missing: list[str] = []

    def replace(m: re.Match) -> str:
        svg = _svg(m.group(2), m.group(3), icons)
        if svg is None:
            missing.append(m.group(3))
            return m.group(0)
        return svg

    return ICON.sub(replace, FA_SCRIPT.sub("", html)), missing


def theme_stylesheet() -> Path:
    import pydata_sphinx_theme

    return (Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme"
            / "static" / "styles" / "pydata-sphinx-theme.css")


def _mask(icon: tuple[int, int, str]) -> str:
    width, height, path = icon
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}'>"
           f"<path d='{path}'/></svg>")
    return 'url("data:image/svg+xml,' + quote(svg, safe=" /:=',.-") + '")'


def glyph_css(stylesheet: str, icons) -> str:
    """Rules that draw the stylesheet's icon-font glyphs as SVG masks instead.

    Each rule of ``stylesheet`` whose ``content`` is a ``--pst-icon-*`` glyph gets a twin
    with the same selector: no glyph (so the font is never fetched), and the icon's shape
    as a mask over the text colour, at the glyph's size.
    """
    variables: dict[str, str] = {}
    for m in CSS_VAR.finditer(stylesheet):
        variables.setdefault(m.group(1), m.group(2) if m.group(2) is not None
                             else "var:" + m.group(3))

    def codepoint(name: str) -> str | None:
        for _ in range(5):
            value = variables.get(name)
            if value is None or not value.startswith("var:"):
                break
            name = value[4:]
        if not value:
            return None
        return f"{ord(value[0]):x}" if not re.fullmatch(r"[0-9a-f]{4}", value) else value

    masks: dict[str, str] = {}
    rules = []
    for m in CSS_RULE.finditer(stylesheet):
        selector, body, name = m.group(1).strip(), m.group(2), m.group(3)
        point = codepoint(name)
        icon = next((icons[(style, "U+" + point)] for style in ("fas", "fab", "far")
                     if point and (style, "U+" + point) in icons), None)
        if icon is None:
            continue
        masks.setdefault(point, _mask(icon))
        box = "" if "width:" in body or "admonition-title" in selector else (
            "display:inline-block;width:1em;height:1em;vertical-align:-.125em;")
        image = f"var(--ll-glyph-{point})"
        rules.append(f'{selector}{{content:""!important;font-family:inherit!important;{box}'
                     f"background-color:currentColor;"
                     f"-webkit-mask:{image} center/contain no-repeat;"
                     f"mask:{image} center/contain no-repeat}}")
    root = ":root{" + ";".join(f"--ll-glyph-{p}:{u}" for p, u in masks.items()) + "}"
    return "\n".join([root, *rules]) + "\n"


def _page_context(app, pagename, templatename, context, doctree) -> None:
    app.add_css_file(CSS_FILE)


def _build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    icons = load_icons(theme_fontawesome())
    missing: set[str] = set()
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new, lost = inline_icons(text, icons)
        missing.update(lost)
        if new != text:
            page.write_text(new, encoding="utf-8")
    if missing:
        raise ExtensionError(f"icons not in the theme's Font Awesome: {sorted(missing)}")
    css = Path(app.outdir) / "_static" / CSS_FILE
    css.parent.mkdir(parents=True, exist_ok=True)
    css.write_text("/* The theme's icon-font glyphs drawn as SVG masks (losslab.site.icons). */\n"
                   + glyph_css(theme_stylesheet().read_text(encoding="utf-8"), icons),
                   encoding="utf-8")


def setup(app):
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
