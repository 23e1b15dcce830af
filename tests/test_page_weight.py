"""What every page loads: formulas typeset at build time, icons drawn in, no icon font script.

The formulas are MathJax's SVG written by the build (``losslab.site.mathsvg``), each with
its MathML for screen readers; the theme's icons are inline SVG from the theme's own Font
Awesome (``losslab.site.icons``). Every built page is parsed to check that no page loads
MathJax or ``fontawesome.js`` and that nothing is left for them to do.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from test_site_browser import HTML, toc_files

from losslab.site import icons, mathsvg


@pytest.fixture(scope="module")
def typesetter():
    mj = mathsvg.MathJaxSVG()
    try:
        yield mj
    finally:
        mj.close()


def _parse(markup: str) -> BeautifulSoup:
    return BeautifulSoup(markup, "html.parser")


def test_inline_and_display_formulas_become_svg_with_mathml_and_no_tab_stop(typesetter):
    inline = _parse(typesetter.render(r"\ell(x) = \log(1 + e^{-x})", display=False))
    container = inline.find("mjx-container")
    assert container is not None and container.get("display") is None
    svg = container.find("svg")
    assert svg is not None and svg.find("path") is not None
    assert svg.get("aria-hidden") == "true" and svg.get("focusable") == "false"
    math = container.find("math")
    assert math is not None and [mi.text for mi in math.find_all("mi")][:2] == ["ℓ", "x"]
    assert not inline.select("[tabindex]"), "a formula must not take a Tab stop"

    block = _parse(typesetter.render(
        r"\begin{align} a &= b \\ \mathrm{loss} &= \tfrac{1}{n}\sum_i \ell_i \end{align}",
        display=True))
    assert block.find("mjx-container").get("display") == "true"
    assert block.find("math").find("mtable") is not None, "align must become a table"


def test_a_formula_mathjax_cannot_read_is_an_error_naming_it(typesetter):
    with pytest.raises(ValueError, match="close brace"):
        typesetter.render(r"\frac{1}{2", display=True)
    with pytest.raises(ValueError, match="Undefined control sequence"):
        typesetter.render(r"\notamacro x", display=False)
    # The process serves the next request after an error.
    assert "<svg" in typesetter.render("x^2", display=False)


def test_the_stylesheet_hides_the_mathml_only_visually(typesetter):
    assert "mjx-assistive-mml" in typesetter.css and "clip" in typesetter.css


def test_display_tex_joins_paragraphs_as_sphinx_does():
    from docutils import nodes

    one = nodes.math_block("a = b", "a = b", nowrap=False)
    assert mathsvg.display_tex(one) == "a = b"
    two = nodes.math_block("a = b\n\nc = d \\\\ e", "a = b\n\nc = d \\\\ e", nowrap=False)
    tex = mathsvg.display_tex(two)
    assert tex.startswith(r"\begin{align}\begin{aligned}") and r"\begin{split}c = d" in tex
    raw = nodes.math_block(r"\begin{align}x\end{align}", r"\begin{align}x\end{align}",
                           nowrap=True)
    assert mathsvg.display_tex(raw) == r"\begin{align}x\end{align}"


def test_icons_come_from_the_theme_and_keep_their_attributes():
    table = icons.load_icons(icons.theme_fontawesome())
    for key in [("fas", "bars"), ("fas", "list"), ("fab", "github"), ("fas", "rocket"),
                ("fas", "download"), ("fas", "magnifying-glass"), ("fas", "sun")]:
        assert key in table, f"{key} is not in the theme's Font Awesome"
    page = ('<head><script defer src="../_static/scripts/fontawesome.js?digest=1"></script>'
            '</head><button><i class="theme-switch fa-solid fa-sun fa-lg" data-mode="light">'
            '</i><span class="fa-brands fa-github"></span><i class="fa-solid fa-no-such">'
            '</i></button>')
    out, missing = icons.inline_icons(page, table)
    soup = _parse(out)
    assert not soup.find("script"), "fontawesome.js must be dropped"
    sun, github = soup.find_all("svg")
    assert "theme-switch" in sun["class"] and sun["data-mode"] == "light"
    assert sun["viewbox"] == "0 0 512 512" and sun.find("path")["d"].startswith("M")
    assert github["viewbox"].split()[2] == str(table[("fab", "github")][0])
    assert missing == ["fa-solid fa-no-such"]


def _built_pages():
    if not (HTML / "index.html").is_file():
        pytest.fail("the site is not built; run `make book` first")
    return [HTML / f"{f}.html" for f in toc_files()] + [HTML / "search.html",
                                                         HTML / "genindex.html"]


def test_no_page_loads_mathjax_or_the_icon_font_script():
    for page in _built_pages():
        soup = _parse(page.read_text(encoding="utf-8"))
        sources = [s.get("src", "") for s in soup.find_all("script")]
        assert not [s for s in sources if "mathjax" in s.lower() or "fontawesome" in s], (
            f"{page.name} loads {sources}")
        leftover = [str(i)[:80] for i in soup.select("i[class*='fa-'], span[class*='fa-']")]
        assert leftover == [], f"{page.name}: icons left for a script to draw: {leftover}"
        for button in soup.select(".primary-toggle, .theme-switch-button, .search-button"):
            assert button.find("svg"), f"{page.name}: {button.get('class')} has no icon"


def test_every_formula_is_on_the_page_drawn():
    typeset = 0
    for page in _built_pages():
        soup = _parse(page.read_text(encoding="utf-8"))
        for math in soup.select(".math"):
            container = math.find("mjx-container")
            assert container is not None, f"{page.name}: a formula was not typeset: {math}"
            assert container.find("svg") and container.find("math")
            typeset += 1
        assert not soup.select(".math-error"), f"{page.name}: a formula failed"
        if soup.select(".math"):
            css = [link["href"] for link in soup.find_all("link", rel="stylesheet")]
            assert any(h.split("?")[0].endswith(mathsvg.CSS_FILE) for h in css), page.name
    assert typeset > 50, f"only {typeset} formulas on the whole site"


def test_the_themes_icon_font_glyphs_become_svg_masks():
    table = icons.load_icons(icons.theme_fontawesome())
    sheet = (':root{--pst-icon-lightbulb:"\uf0eb";--pst-icon-admonition-tip:'
             'var(--pst-icon-lightbulb)}'
             '.admonition.tip>.admonition-title:after{color:red;content:var(--pst-icon-admonition-tip)}'
             'a.reference.download:before{content:var(--pst-icon-lightbulb);font:var(--fa-font-solid)}'
             '.other{content:"x"}')
    css = icons.glyph_css(sheet, table)
    rules = [line for line in css.splitlines() if line]
    assert rules[0].startswith(":root{--ll-glyph-f0eb:url(\"data:image/svg+xml,")
    lightbulb = table[("fas", "lightbulb")][2]
    assert lightbulb[:20].replace(" ", "%20") in rules[0] or lightbulb[:20] in rules[0]
    tip, download = rules[1:]
    assert tip.startswith('.admonition.tip>.admonition-title:after{content:""!important;'
                          'font-family:inherit!important;')
    assert "mask:var(--ll-glyph-f0eb)" in tip and "width" not in tip
    assert download.startswith("a.reference.download:before{") and "width:1em" in download
    assert ".other" not in css
