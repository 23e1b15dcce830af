"""The built site in a real browser: headless Debian Chromium driven by Playwright.

The site is served on 127.0.0.1 under a sub-path, as a project site is. Every page
must load with no console error and no request to any other host; every control of
every widget, moved with the keyboard, must redraw the curves to the values torch
computes for the new setting, and say them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from browser import PageLog, axe_violations, browser, open_page, serve
from expected_curves import EXPECTED
from test_text_alternatives import check_sentence

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
PIXEL_TOLERANCE = 0.75


def toc_files() -> list[str]:
    """Every document the table of contents lists, root first (paths without suffix)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def site_pages() -> list[str]:
    """The pages a reader can reach: one per toc entry, plus the index and search pages."""
    return [f"{f}.html" for f in toc_files()] + ["index.html", "search.html", "genindex.html"]


@pytest.fixture(scope="module")
def site():
    assert (HTML / "index.html").is_file(), "the site is not built; run `make book` first"
    with serve(HTML) as base, browser() as context:
        yield base, context


def load(site, page_name: str, color_scheme: str | None = None):
    assert (HTML / page_name).is_file(), f"{page_name} is missing from the built site"
    base, context = site
    log = PageLog()
    page = open_page(context, base + page_name, log, color_scheme=color_scheme)
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if views:
        page.wait_for_function(
            "n => document.querySelectorAll('.losslab-figure .losslab-plot').length >= n",
            arg=views,
            timeout=20_000,
        )
        page.wait_for_function(
            "n => document.querySelectorAll('.ll-slot.ll-live').length >= n", arg=views,
            timeout=20_000,
        )
    page.wait_for_timeout(300)
    return page, log, views


@pytest.mark.parametrize("page_name", site_pages())
def test_page_loads_with_no_console_error_and_no_outside_request(site, page_name):
    page, log, views = load(site, page_name)
    try:
        assert log.page_errors == [], f"{page_name}: uncaught errors {log.page_errors}"
        assert log.console_errors == [], f"{page_name}: console errors {log.console_errors}"
        assert log.outside_requests == [], (
            f"{page_name}: requests left the site: {log.outside_requests}"
        )
        assert log.failed_requests == [], f"{page_name}: failed requests {log.failed_requests}"
        live = page.locator(".losslab-figure .losslab-plot").count()
        assert live == views, f"{page_name}: {views} widget views in the page, {live} rendered"
    finally:
        page.close()


def _widget_pages() -> list[str]:
    """Pages whose source makes a widget (a chapter that calls losslab's figures)."""
    pages = []
    for f in toc_files():
        src = ROOT / f"{f}.md"
        if src.is_file() and "losslab" in src.read_text() and "```{code-cell}" in src.read_text():
            pages.append(f"{f}.html")
    return pages


def _parse_path(d: str) -> np.ndarray:
    pts = re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)
    return np.array([[float(a), float(b)] for a, b in pts]).reshape(-1, 2)


def drawn_series(plot) -> dict:
    """``{(panel title, series label): pixel coordinates (n, 2)}`` and each panel's scale."""
    return plot.evaluate("""(plot) => {
        const out = [];
        for (const fig of plot.querySelectorAll('figure.ll-figure')) {
            const svg = fig.querySelector('svg.ll-panel');
            const title = fig.querySelector('.ll-title').textContent;
            for (const node of svg.querySelectorAll('.ll-series')) {
                let pts;
                if (node.tagName === 'path') pts = node.getAttribute('d');
                else pts = Array.from(node.querySelectorAll('circle')).map(
                    c => 'M' + c.getAttribute('cx') + ',' + c.getAttribute('cy')).join('');
                out.push({title, label: node.dataset.label, d: pts,
                          x: svg.dataset.xdomain, y: svg.dataset.ydomain,
                          px: svg.dataset.xrange, py: svg.dataset.yrange});
            }
        }
        return out;
    }""")


def to_pixels(item, x, y):
    x0, x1 = map(float, item["x"].split(","))
    y0, y1 = map(float, item["y"].split(","))
    px0, px1 = map(float, item["px"].split(","))
    py0, py1 = map(float, item["py"].split(","))
    return np.stack([px0 + (x - x0) / (x1 - x0) * (px1 - px0),
                     py0 + (y - y0) / (y1 - y0) * (py1 - py0)], axis=1)


def assert_curves_match(plot, title: str):
    """The drawn curves, and the numbers their text alternative says, are torch's."""
    values = json.loads(plot.get_attribute("data-values"))
    expected = EXPECTED[title](values)
    panels = plot.evaluate("""(plot) => Array.from(plot.querySelectorAll('figure.ll-figure'),
        fig => ({title: fig.querySelector('.ll-title').textContent,
                 xname: fig.querySelector('svg.ll-panel').dataset.xname,
                 said: fig.querySelector('.ll-desc').textContent,
                 kinds: Object.fromEntries(Array.from(fig.querySelectorAll('.ll-series'),
                     n => [n.dataset.label, n.classList.contains('ll-points') ? 'points'
                                                                              : 'line']))}))""")
    for panel in panels:
        for label, kind in panel["kinds"].items():
            x, y = (np.asarray(a, dtype=float) for a in expected[(panel["title"], label)])
            check_sentence(panel["said"], label, panel["xname"], np.broadcast_to(x, y.shape),
                           y, kind, f"{title} / {panel['title']} at {values}")
    drawn = drawn_series(plot)
    assert {(d["title"], d["label"]) for d in drawn} == set(expected), (
        f"{title}: drawn series differ from the expected ones"
    )
    for item in drawn:
        x, y = expected[(item["title"], item["label"])]
        keep = np.isfinite(x) & np.isfinite(y)
        want = to_pixels(item, np.asarray(x)[keep], np.asarray(y)[keep])
        got = _parse_path(item["d"])
        assert got.shape == want.shape, (
            f"{title} / {item['label']} at {values}: drew {len(got)} points, expected {len(want)}"
        )
        err = np.abs(got - want).max() if len(got) else 0.0
        assert err <= PIXEL_TOLERANCE, (
            f"{title} / {item['title']} / {item['label']} at {values}: drawn curve is "
            f"{err:.2f} px from the torch values (tolerance {PIXEL_TOLERANCE} px)"
        )


CONTROL_KINDS = {"ll-slider": "slider", "ll-dropdown": "dropdown", "ll-toggle": "toggle"}
CONTROL_INPUT = {"slider": "input[type=range]", "dropdown": "select",
                 "toggle": "input[type=checkbox]"}


def control_kind(control) -> str:
    cls = control.get_attribute("class").split()
    kinds = [CONTROL_KINDS[c] for c in cls if c in CONTROL_KINDS]
    assert len(kinds) == 1, f"a control with classes {cls}"
    return kinds[0]


def assert_control_speaks(page, control, kind: str, label: str, shown: str, where: str):
    """A native control named by its visible label; a slider says and shows its value."""
    node = control.locator(CONTROL_INPUT[kind])
    assert node.count() == 1, f"{where}: {label!r} is not one native {kind}"
    name, visible, disabled = node.evaluate("""n => [
        n.labels && n.labels.length === 1 ? n.labels[0].textContent : null,
        n.labels && n.labels.length === 1 ? n.labels[0].innerText : null, n.disabled]""")
    assert name == visible == label, (
        f"{where}: {kind} is named {name!r}, shows the label {visible!r}, expected {label!r}")
    assert not disabled, f"{where}: {label!r} is disabled in the live figure"
    if kind == "slider":
        said = node.get_attribute("aria-valuetext")
        output = control.locator("output")
        assert said == shown == output.inner_text().strip(), (
            f"{where}: slider {label!r} announces {said!r}, shows "
            f"{output.inner_text()!r}, expected {shown!r}")
    elif kind == "dropdown":
        assert node.evaluate("n => n.options[n.selectedIndex].textContent") == shown
    else:
        assert node.is_checked() == (shown == "on"), f"{where}: {label!r} shows {shown!r}"


def assert_text_alternative(plot, values: dict, where: str):
    """Each panel's description names every series with its key values at this setting."""
    descs = plot.locator(".ll-desc").all_text_contents()
    titles = plot.locator(".ll-title").all_inner_texts()
    labels = plot.locator(".ll-key-text").all_inner_texts()
    assert len(descs) == len(titles) > 0, (
        f"{where}: {len(descs)} descriptions for {len(titles)} panels")
    text = " ".join(descs)
    for label in labels:
        assert label + ":" in text, f"{where}: the text alternative never mentions {label!r}"
    assert re.search(r"\d", text), f"{where}: the text alternative gives no value: {text!r}"
    # Read once: as each picture's description, and nowhere else on the way through.
    ids = plot.locator("svg.ll-panel").evaluate_all(
        "ss => ss.map(s => { const d = document.getElementById(s.getAttribute('aria-describedby'));"
        " return d !== null && d.hidden && d.classList.contains('ll-desc'); })")
    assert ids and all(ids), f"{where}: a panel's description is missing or read in the flow"
    shown = plot.evaluate("p => p.innerText")
    assert not any(d in shown for d in descs), f"{where}: a description is also shown as text"


def assert_build_time_picture_matches(page, i: int, plot, where: str):
    """The picture drawn at build time (Python) is the live plot's first frame (JS)."""
    static = page.locator(".ll-slot .ll-static .losslab-plot").nth(i)
    assert static.locator(".ll-desc").all_text_contents() == \
        plot.locator(".ll-desc").all_text_contents(), f"{where}: the texts differ"
    for a, b in zip(drawn_series(static), drawn_series(plot), strict=True):
        assert (a["title"], a["label"]) == (b["title"], b["label"])
        for axis in ("x", "y", "px", "py"):
            assert np.allclose([float(v) for v in a[axis].split(",")],
                               [float(v) for v in b[axis].split(",")]), (where, a["title"], axis)
        pa, pb = _parse_path(a["d"]), _parse_path(b["d"])
        assert pa.shape == pb.shape and (pa.size == 0 or np.abs(pa - pb).max() <= 0.011), (
            f"{where} / {a['label']}: the build-time curve differs from the live one")


def move(page, control, kind: str, forward: bool):
    control.locator(CONTROL_INPUT[kind]).focus()
    if kind == "slider":
        page.keyboard.press("ArrowRight" if forward else "ArrowLeft")
    elif kind == "dropdown":
        page.keyboard.press("ArrowDown" if forward else "ArrowUp")
    else:
        page.keyboard.press("Space")


@pytest.mark.parametrize("page_name", _widget_pages())
def test_every_control_moves_the_curves_to_torch_values(site, page_name):
    page, log, views = load(site, page_name)
    try:
        figures = page.locator(".losslab-figure")
        assert figures.count() > 0, f"{page_name}: no widget rendered"
        for i in range(figures.count()):
            fig = figures.nth(i)
            plot = fig.locator(".losslab-plot")
            title = plot.get_attribute("aria-label")
            assert title in EXPECTED, (
                f"{page_name}: widget {title!r} has no expected curves in tests/expected_curves.py"
            )
            assert_curves_match(plot, title)
            assert_build_time_picture_matches(page, i, plot, f"{page_name}: {title}")
            controls = fig.locator(".ll-control")
            values = json.loads(plot.get_attribute("data-values"))
            assert controls.count() == len(values)
            assert_text_alternative(plot, values, f"{page_name}: {title}")
            for c in range(controls.count()):
                control = controls.nth(c)
                kind = control_kind(control)
                label = list(values)[c]
                assert_control_speaks(page, control, kind, label, values[label],
                                      f"{page_name}: {title}")
                described = plot.locator(".ll-desc").all_text_contents()
                drawn_before = [d["d"] for d in drawn_series(plot)]
                before = plot.get_attribute("data-frame")
                move(page, control, kind, forward=True)
                if plot.get_attribute("data-frame") == before:
                    move(page, control, kind, forward=False)  # it was at the end
                after = plot.get_attribute("data-frame")
                assert after != before, (
                    f"{page_name}: {title}: control {c} ({kind}) did not change the plot"
                )
                assert_curves_match(plot, title)
                values = json.loads(plot.get_attribute("data-values"))
                assert_control_speaks(page, control, kind, label, values[label],
                                      f"{page_name}: {title} after a move")
                # (pos_weight, say, changes nothing while the label is 0: then nor do the words)
                redrawn = [d["d"] for d in drawn_series(plot)] != drawn_before
                assert not redrawn or plot.locator(".ll-desc").all_text_contents() != described, (
                    f"{page_name}: {title}: moving {label!r} left the text alternative as it was")
                if c == 0:
                    # Announced briefly once the reader stops: the new value, the marked points.
                    page.wait_for_function(
                        "p => p.querySelector('.ll-announce').textContent.length > 0",
                        arg=plot.element_handle(), timeout=5_000)
                    said = plot.locator(".ll-announce").text_content()
                    assert said.startswith(f"{label} {values[label]}.") and len(said) < 240, (
                        f"{page_name}: {title}: after a move the reader hears {said!r}")
        assert log.console_errors == [] and log.page_errors == []
    finally:
        page.close()


@pytest.mark.parametrize("page_name", _widget_pages()[:2])
def test_widgets_fit_a_phone_and_follow_the_dark_theme(site, page_name):
    page, log, views = load(site, page_name)
    try:
        page.set_viewport_size({"width": 375, "height": 800})
        page.wait_for_timeout(200)
        overflow = page.evaluate("""() => Array.from(document.querySelectorAll('.losslab-figure'))
            .map(f => f.getBoundingClientRect()).filter(r => r.right > window.innerWidth + 1)
            .length""")
        assert overflow == 0, f"{page_name}: {overflow} widgets wider than a 375 px phone"
        colour = ("() => getComputedStyle(document.querySelector("
                  "'.losslab-figure path.ll-series')).stroke")
        page.evaluate("() => document.documentElement.dataset.theme = 'light'")
        light = page.evaluate(colour)
        page.evaluate("() => document.documentElement.dataset.theme = 'dark'")
        dark = page.evaluate(colour)
        assert light != dark, "the plot's colours should follow the theme"
        text = page.evaluate(
            "() => getComputedStyle(document.querySelector('.losslab-figure .ll-label')).fill")
        assert text in ("rgb(230, 237, 243)",), f"dark-mode axis labels are {text}"
    finally:
        page.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("page_name", site_pages())
def test_axe_finds_no_serious_or_critical_violation(site, page_name, theme):
    page, log, views = load(site, page_name, color_scheme=theme)
    try:
        assert page.evaluate("() => document.documentElement.dataset.theme") == theme
        found = axe_violations(page)
        assert found == [], f"{page_name} ({theme}): axe-core reports " + json.dumps(
            found, indent=1, ensure_ascii=False)
    finally:
        page.close()


def _shares(page) -> list[dict]:
    """For every panel on the page: its title, the share of drawn points inside the plot
    area, and the height those points span as a share of the plot area's height."""
    return page.evaluate("""() => Array.from(document.querySelectorAll(
            '.losslab-figure .losslab-plot figure.ll-figure')).map(fig => {
        const svg = fig.querySelector('svg.ll-panel');
        const [px0, px1] = svg.dataset.xrange.split(',').map(Number);
        const [py0, py1] = svg.dataset.yrange.split(',').map(Number);
        const pts = [];
        for (const p of svg.querySelectorAll('path.ll-series')) {
            for (const m of (p.getAttribute('d') || '').matchAll(/[ML](-?[\\d.]+),(-?[\\d.]+)/g))
                pts.push([Number(m[1]), Number(m[2])]);
        }
        for (const c of svg.querySelectorAll('.ll-points circle'))
            pts.push([Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]);
        const inside = pts.filter(([x, y]) => x >= px0 - 0.5 && x <= px1 + 0.5 &&
                                              y <= py0 + 0.5 && y >= py1 - 0.5);
        const ys = inside.map(p => p[1]);
        return {title: fig.closest('.losslab-plot').getAttribute('aria-label') + ' / ' +
                       fig.querySelector('.ll-title').textContent,
                inside: pts.length ? inside.length / pts.length : 1,
                height: ys.length ? (Math.max(...ys) - Math.min(...ys)) / (py0 - py1) : 0,
                points: pts.length};
    })""")


@pytest.mark.parametrize("page_name", _widget_pages())
def test_every_widget_opens_with_its_curves_in_view(site, page_name):
    """At the opening setting, every panel's curves lie inside its axes (90 % of the drawn
    points) and use a fair share of its height (a fifth at least, unless all are flat)."""
    page, log, views = load(site, page_name)
    try:
        poor = [s for s in _shares(page)
                if s["inside"] < 0.9 or (s["points"] > 2 and s["height"] < 0.2)]
        assert poor == [], f"{page_name}: panels that hide their curves: {poor}"
    finally:
        page.close()


@pytest.mark.parametrize("page_name", _widget_pages()[:3])
def test_every_figure_is_drawn_before_any_widget_javascript(site, page_name):
    """With the widget runtime refused, each figure still shows its curves and its controls'
    values (built in), the controls disabled."""
    base, context = site
    log = PageLog()
    page = open_page(context, base + page_name, log, block=("widget-loader.js",))
    try:
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        static = page.locator(".ll-slot .ll-static")
        assert static.count() == views > 0
        for i in range(views):
            fig = static.nth(i)
            assert fig.is_visible(), f"{page_name}: figure {i} is not visible at first paint"
            drawn = fig.locator(".ll-series").evaluate_all(
                "ns => ns.filter(n => (n.getAttribute('d') || '').length > 10 || "
                "n.querySelector('circle')).length")
            assert drawn > 0, f"{page_name}: figure {i} has no curve before the widgets load"
            assert fig.locator(".ll-desc").count() > 0
            inputs = fig.locator(".ll-control :is(input, select)")
            assert inputs.count() == fig.locator(".ll-control").count()
            assert all(inputs.nth(k).is_disabled() for k in range(inputs.count()))
        assert page.locator(".losslab-figure .losslab-plot").count() == 0
    finally:
        page.close()


@pytest.mark.parametrize("page_name", _widget_pages())
def test_figures_turn_live_without_a_layout_shift(site, page_name):
    base, context = site
    log = PageLog()
    page = open_page(context, base + page_name, log)
    try:
        page.wait_for_function("() => document.querySelectorAll('.ll-slot').length > 0 && "
                               "document.querySelectorAll('.ll-slot:not(.ll-live)').length === 0",
                               timeout=20_000)
        page.wait_for_timeout(500)
        shift = page.evaluate("""() => new Promise(r => {
            let total = 0;
            new PerformanceObserver(l => {
                for (const e of l.getEntries()) if (!e.hadRecentInput) total += e.value;
                r(total);
            }).observe({type: 'layout-shift', buffered: true});
            setTimeout(() => r(total), 300);
        })""")
        assert shift < 0.05, f"{page_name}: cumulative layout shift {shift:.3f} while loading"
        # Below the fold a shift is not counted above, so compare the heights directly:
        # the build-time picture and the live figure, at a desktop and a phone width.
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(200)
            heights = page.evaluate("""() => Array.from(document.querySelectorAll('.ll-slot'))
                .map(slot => {
                    const live = slot.querySelector('.widget-subarea > *')
                        .getBoundingClientRect().height;
                    slot.classList.remove('ll-live');
                    const built = slot.querySelector('.ll-static').getBoundingClientRect().height;
                    slot.classList.add('ll-live');
                    return [built, live];
                })""")
            off = [(b, lv) for b, lv in heights if abs(b - lv) > 2]
            assert off == [], (
                f"{page_name} at {width} px: build-time and live heights differ: {off}")
    finally:
        page.close()


def test_axe_reports_what_it_should(site):
    """The axe check can fail: an unlabelled field and low-contrast text are caught."""
    _, context = site
    page = context.new_page()
    try:
        page.set_content('<html lang="en"><head><title>t</title></head><body><main>'
                         '<input type="text"><p style="color:#777;background:#888">faint</p>'
                         '</main></body></html>')
        ids = {v["id"] for v in axe_violations(page)}
        assert {"label", "color-contrast"} <= ids, ids
    finally:
        page.close()


@pytest.mark.parametrize("page_name", _widget_pages())
def test_controls_show_focus_have_big_targets_and_panels_share_one_text_scale(site, page_name):
    page, log, views = load(site, page_name, color_scheme="dark")
    try:
        targets = page.locator(".losslab-figure .ll-control :is(input, select)")
        assert targets.count() > 0
        for i in range(targets.count()):
            t = targets.nth(i)
            t.focus()
            ring = t.evaluate("""n => { const s = getComputedStyle(n);
                const r = n.getBoundingClientRect();
                return [s.outlineStyle, parseFloat(s.outlineWidth), r.width, r.height]; }""")
            assert ring[0] != "none" and ring[1] >= 2, f"{page_name}: control {i} shows no focus"
            assert min(ring[2], ring[3]) >= 24, f"{page_name}: control {i} is {ring[2:]} px"
        # A slider's label and shown value sit beside it, never under its handle.
        overlaps = page.evaluate("""() => Array.from(document.querySelectorAll(
                '.losslab-figure .ll-slider'), c => {
            const box = n => n.getBoundingClientRect();
            const a = box(c.querySelector('input')), l = box(c.querySelector('label')),
                  o = box(c.querySelector('output'));
            const hit = (p, q) => p.left < q.right - 0.5 && q.left < p.right - 0.5 &&
                                  p.top < q.bottom - 0.5 && q.top < p.bottom - 0.5;
            return hit(a, l) || hit(a, o);
        }).filter(Boolean).length""")
        assert overlaps == 0, f"{page_name}: {overlaps} sliders overlap their label or value"
        weights = page.evaluate("() => Array.from(document.querySelectorAll("
                                "'.losslab-figure .ll-key-text'), n => "
                                "Number(getComputedStyle(n).fontWeight))")
        assert min(weights) >= 400, f"{page_name}: legend text weights {set(weights)}"
        for width in (1280, 900, 600, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(150)
            spread = page.evaluate("""() => Array.from(document.querySelectorAll(
                    '.losslab-figure .losslab-plot')).map(p => {
                const w = Array.from(p.querySelectorAll('svg.ll-panel'),
                                     s => s.getBoundingClientRect().width);
                return Math.max(...w) - Math.min(...w);
            })""")
            assert max(spread) <= 1, (
                f"{page_name} at {width} px: panels of one figure differ in width (so in "
                f"text size) by up to {max(spread):.1f} px")
            smallest = page.evaluate("""() => Math.min(...Array.from(document.querySelectorAll(
                '.losslab-figure .ll-tick'), t => {
                const svg = t.ownerSVGElement;
                const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
                return parseFloat(getComputedStyle(t).fontSize) * scale; }))""")
            assert smallest >= 10.5, (
                f"{page_name} at {width} px: tick labels are drawn {smallest:.1f} px tall")
    finally:
        page.close()


def test_print_is_light_wraps_code_and_keeps_widgets_whole(site):
    page, log, views = load(site, _widget_pages()[0], color_scheme="dark")
    try:
        page.emulate_media(media="print", color_scheme="dark")
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        look = page.evaluate("""() => {
            const body = getComputedStyle(document.body);
            const pre = getComputedStyle(document.querySelector('div.highlight pre'));
            const slot = getComputedStyle(document.querySelector('.ll-slot'));
            const label = getComputedStyle(document.querySelector('.losslab-figure .ll-label'));
            return {bg: body.backgroundColor, fg: body.color, wrap: pre.whiteSpace,
                    preBg: pre.backgroundColor, breakInside: slot.breakInside,
                    label: label.fill};
        }""")
        assert look["bg"] == "rgb(255, 255, 255)", look
        assert look["fg"] == "rgb(31, 35, 40)", look
        assert look["wrap"] == "pre-wrap" and look["breakInside"] == "avoid", look
        assert look["label"] == "rgb(31, 35, 40)", look
    finally:
        page.close()


# What a chapter page may cost a reader on a first visit, compressed as a web server sends
# it (tests/page_weight.py), in bytes. The JavaScript and the widget runtime are held to their
# goals (today about 80 kB and 7.6 kB: the theme's scripts, the runtime, the front end). The
# others sit a little above what the heaviest page weighs today, so that what adds weight is
# seen and chosen: the HTML carries every formula as SVG with its MathML (multiclass, about
# 92 kB), the widget state every figure's precomputed curves (multiclass, about 74 kB), the
# styles the theme's and the site's own (about 100 kB).
BUDGETS = {
    "widget runtime": 30_000,
    "js": 250_000,
    "widget state": 100_000,
    "html": 110_000,
    "css": 115_000,
    "fonts": 400_000,
}


@pytest.mark.parametrize("page_name", [p for p in site_pages() if p.startswith("chapters/")])
def test_every_chapter_page_stays_within_its_transfer_budget(site, page_name):
    from page_weight import page_weight

    base, context = site

    def ready(page):
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if views:
            page.wait_for_function("n => document.querySelectorAll('.ll-slot.ll-live').length "
                                   ">= n", arg=views, timeout=20_000)

    w = page_weight(context, base + page_name, HTML, ready)
    spent = {"widget runtime": w.runtime_compressed, **w.compressed}
    over = {k: f"{spent[k]:,} > {budget:,}" for k, budget in BUDGETS.items() if spent[k] > budget}
    assert over == {}, f"{page_name}: over budget (compressed bytes): {over}"
    if "ll-slot" in (HTML / page_name).read_text():
        assert w.runtime_compressed > 0, f"{page_name}: weighed no widget runtime"
        names = {Path(f).name for f, _, _ in w.files}
        assert not names & {"embed-amd.js", "require.js"}, (
            f"{page_name} loads {names & {'embed-amd.js', 'require.js'}}")


# Every text of every panel, measured in the panel's own units (its 360 x 250 viewBox): the
# rotated y label by its length about its centre, everything else by its box.
PANEL_TEXTS = """() => Array.from(
  document.querySelectorAll('.losslab-figure svg.ll-panel')).map(svg => {
    const [, , w, h] = svg.getAttribute('viewBox').split(' ').map(Number);
    const texts = Array.from(svg.querySelectorAll('text')).map(t => {
        const b = t.getBBox();
        const rotated = (t.getAttribute('transform') || '').includes('rotate');
        return {cls: t.getAttribute('class'), text: t.textContent, rotated,
                left: b.x, right: b.x + b.width, top: b.y, bottom: b.y + b.height,
                length: b.width};
    });
    return {w, h, label: svg.getAttribute('aria-label'), texts};
})"""


@pytest.mark.parametrize("page_name", _widget_pages())
def test_axis_labels_stay_inside_their_picture_and_clear_of_the_ticks(site, page_name):
    """A long x label is broken into lines: never cut off at a phone's edge, never on a tick."""
    page, log, views = load(site, page_name)
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(200)
        panels = page.evaluate(PANEL_TEXTS)
        assert panels, f"{page_name}: no live panel found"
        for panel in panels:
            where = f"{page_name}: {panel['label']}"
            ticks_bottom = max((t["bottom"] for t in panel["texts"]
                                if t["cls"] == "ll-tick" and t["top"] > panel["h"] * 0.7),
                               default=0)
            for t in panel["texts"]:
                if t["rotated"]:
                    assert t["length"] <= panel["h"], (
                        f"{where}: the y label {t['text']!r} is longer than the picture")
                    continue
                # Two units of slack: a tick number at the right end may touch the edge.
                assert t["left"] >= -2 and t["right"] <= panel["w"] + 2, (
                    f"{where}: {t['cls']} {t['text']!r} runs from {t['left']:.0f} to "
                    f"{t['right']:.0f}, outside 0..{panel['w']:.0f}")
                if "ll-label" in t["cls"]:
                    assert t["top"] >= ticks_bottom - 0.5, (
                        f"{where}: the x label {t['text']!r} (top {t['top']:.1f}) overlaps the "
                        f"tick numbers (bottom {ticks_bottom:.1f})")
        assert log.console_errors == [] and log.page_errors == []
    finally:
        page.close()
