"""Every reader can find their way: the site on a 390 px touch phone, by keyboard, on a desktop.

On a phone every page opens its chapter list ("Site navigation") and its contents ("On this
page") as drawers by touch, closes them, and follows a link in each; nothing scrolls
sideways, and no tooltip stays up to cover a neighbouring button. With a keyboard every Tab
stop shows a focus ring and no formula takes a Tab stop. On a desktop the menu button hides
and shows the chapter list.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from urllib.parse import urlparse

import pytest
from browser import CHROMIUM_FLAGS, PageLog, chromium_path, open_page, serve
from test_site_browser import HTML, site_pages

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Elements wider than the page, named for the failure message (the widest first).
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const over = [];
    // The page's column and its header; the sidebars are drawers, tested by opening them.
    for (const el of document.querySelectorAll('.bd-main *')) {
        if (el.closest('.bd-sidebar-secondary, .bd-sidebar-primary, dialog')) continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.right <= width + 1) continue;
        // Inside something that scrolls or clips sideways, it cannot widen the page.
        let clipped = false;
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
            const ox = getComputedStyle(p).overflowX;
            if (ox !== 'visible' && p.getBoundingClientRect().right <= width + 1) {
                clipped = true; break;
            }
        }
        if (clipped || getComputedStyle(el).position === 'fixed') continue;
        const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
            (el.className && typeof el.className === 'string'
                ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
        over.push([Math.round(r.right - width), name, (el.textContent || '').trim().slice(0, 60)]);
    }
    over.sort((a, b) => b[0] - a[0]);
    return {scroll: document.documentElement.scrollWidth - width, over: over.slice(0, 5)};
}"""

VISIBLE_TOOLTIPS = """() => Array.from(document.querySelectorAll('.tooltip'))
    .filter(t => { const r = t.getBoundingClientRect(); const s = getComputedStyle(t);
                   return r.width > 0 && s.display !== 'none' && s.visibility !== 'hidden'
                          && Number(s.opacity) > 0; })
    .map(t => t.textContent.trim())"""


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@contextlib.contextmanager
def chromium(pw, **options):
    """Debian's Chromium with a fresh profile and the given context options."""
    profile = tempfile.mkdtemp(prefix="losslab-phone-")
    try:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
            **options)
        try:
            yield context
        finally:
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def phone(playwright):
    assert (HTML / "index.html").is_file(), "the site is not built; run `make book` first"
    with serve(HTML) as base, chromium(playwright, viewport=PHONE, has_touch=True,
                                       is_mobile=True, device_scale_factor=3) as context:
        yield base, context


@pytest.fixture(scope="module")
def desktop(playwright):
    assert (HTML / "index.html").is_file(), "the site is not built; run `make book` first"
    with serve(HTML) as base, chromium(playwright, viewport=DESKTOP) as context:
        yield base, context


def _open(site, page_name: str):
    base, context = site
    log = PageLog()
    page = open_page(context, base + page_name, log)
    page.wait_for_timeout(300)
    return page, log


def _visible_toggle(page, kind: str):
    """The one ``.primary-toggle`` / ``.secondary-toggle`` a reader can see and touch."""
    toggles = page.locator(f".{kind}-toggle:visible")
    assert toggles.count() == 1, f"expected one visible {kind} toggle, found {toggles.count()}"
    return toggles.first


def _drawer_open(page, kind: str) -> bool:
    return page.evaluate(
        "id => { const d = document.getElementById(id); return !!d && d.open; }",
        f"pst-{kind}-sidebar-modal")


def _assert_no_overflow(page, where: str) -> None:
    found = page.evaluate(OVERFLOW)
    assert found["scroll"] <= 0 and not found["over"], (
        f"{where} scrolls sideways by {found['scroll']} px at 390 px; widest: {found['over']}")


def _tap_outside(page, kind: str) -> None:
    """Tap the dimmed page beside the drawer (its backdrop)."""
    box = page.locator(f"#pst-{kind}-sidebar-modal").bounding_box()
    x = box["x"] + box["width"] + 20 if kind == "primary" else box["x"] - 20
    page.touchscreen.tap(max(5, min(PHONE["width"] - 5, x)), PHONE["height"] // 2)


@pytest.mark.parametrize("page_name", site_pages())
def test_phone_reader_opens_both_drawers_follows_their_links_and_never_scrolls_sideways(
        phone, page_name):
    page, log = _open(phone, page_name)
    try:
        _assert_no_overflow(page, page_name)

        # Site navigation: tap opens it, a tap beside it closes it, and no tooltip stays.
        _visible_toggle(page, "primary").tap()
        page.wait_for_timeout(250)
        assert _drawer_open(page, "primary"), f"{page_name}: tapping the menu opened nothing"
        links = page.locator("#pst-primary-sidebar-modal nav a.reference:visible")
        assert links.count() >= 3, f"{page_name}: the chapter list shows {links.count()} links"
        _tap_outside(page, "primary")
        page.wait_for_timeout(250)
        assert not _drawer_open(page, "primary"), f"{page_name}: the menu did not close"
        tips = page.evaluate(VISIBLE_TOOLTIPS)
        assert tips == [], f"{page_name}: a tooltip stays on screen after a tap: {tips}"

        # On this page: where the page has sections, the same, and its link scrolls there.
        secondary = page.locator(".secondary-toggle:visible")
        if page.locator("#pst-page-toc-nav a, .bd-toc-nav a").count():
            assert secondary.count() == 1, f"{page_name}: no visible 'On this page' button"
            secondary.first.tap()
            page.wait_for_timeout(250)
            assert _drawer_open(page, "secondary"), f"{page_name}: 'On this page' opened nothing"
            _tap_outside(page, "secondary")
            page.wait_for_timeout(250)
            assert not _drawer_open(page, "secondary"), f"{page_name}: contents did not close"
            secondary.first.tap()
            page.wait_for_timeout(250)
            toc_links = page.locator("#pst-secondary-sidebar-modal a.nav-link:visible")
            assert toc_links.count() >= 1
            target = toc_links.last
            anchor = target.get_attribute("href")
            target.tap()
            page.wait_for_timeout(400)
            assert urlparse(page.url).fragment == anchor.lstrip("#"), (
                f"{page_name}: following {anchor} left the page at {page.url}")
            assert not _drawer_open(page, "secondary"), (
                f"{page_name}: the contents drawer stays over the section it went to")
            top = page.evaluate("id => document.getElementById(id).getBoundingClientRect().top",
                                anchor.lstrip("#"))
            assert -2 <= top < PHONE["height"] / 2, (
                f"{page_name}: section {anchor} is at {top:.0f} px, not in view")
            assert page.evaluate(VISIBLE_TOOLTIPS) == []

        # A chapter link in the menu takes the reader to that page.
        _visible_toggle(page, "primary").tap()
        page.wait_for_timeout(250)
        links = page.locator("#pst-primary-sidebar-modal nav a.reference.internal:visible")
        current = urlparse(page.url).path
        for i in range(links.count()):
            href = links.nth(i).get_attribute("href")
            if href and not href.startswith("#") and not current.endswith(href.split("#")[0]):
                goal = links.nth(i)
                break
        else:
            pytest.fail(f"{page_name}: no link to another page in the menu")
        with page.expect_navigation():
            goal.tap()
        assert urlparse(page.url).path != current, f"{page_name}: the menu link went nowhere"
        assert page.locator("h1").count() >= 1
        _assert_no_overflow(page, f"{page.url} (reached from {page_name})")
        assert log.page_errors == [] and log.console_errors == [], (
            f"{page_name}: errors {log.page_errors + log.console_errors}")
    finally:
        page.close()


# Where each Tab stop is, what it is, and whether a ring shows around it.
FOCUS_STOP = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2)
        || (s.boxShadow && s.boxShadow !== 'none');
    return {tag: el.tagName.toLowerCase(), name: (el.getAttribute('aria-label') ||
            el.textContent || '').trim().slice(0, 40), cls: String(el.className || ''),
            math: !!el.closest('mjx-container, .math, .MathJax'),
            ring, w: r.width, h: r.height};
}"""

FOCUS_PAGE = "chapters/probabilistic.html"


def test_every_tab_stop_shows_a_focus_ring_and_no_formula_takes_one(desktop):
    """Tab through a chapter with many formulas: each stop is visible, none is a formula."""
    assert (HTML / FOCUS_PAGE).is_file(), f"{FOCUS_PAGE} is missing from the built site"
    page, log = _open(desktop, FOCUS_PAGE)
    try:
        stops = []
        for _ in range(60):
            page.keyboard.press("Tab")
            stop = page.evaluate(FOCUS_STOP)
            if stop is None:
                break
            stops.append(stop)
        assert len(stops) >= 20, f"only {len(stops)} Tab stops on {FOCUS_PAGE}"
        formulas = [s for s in stops if s["math"]]
        assert formulas == [], f"{len(formulas)} of {len(stops)} Tab stops are formulas"
        unseen = [f"{s['tag']}.{s['cls']} '{s['name']}'" for s in stops
                  if not s["ring"] or min(s["w"], s["h"]) <= 0]
        assert unseen == [], f"Tab stops with no visible focus ring: {unseen}"
        names = " ".join(s["name"].lower() + " " + s["cls"] for s in stops)
        for control in ("primary-toggle", "launch", "download", "repository"):
            assert control in names, f"the Tab order never reaches the {control} button"
    finally:
        page.close()


def test_the_desktop_menu_button_hides_and_shows_the_chapter_list(desktop):
    page, log = _open(desktop, "chapters/regression.html" if (
        HTML / "chapters/regression.html").is_file() else site_pages()[1])
    try:
        sidebar = page.locator("#pst-primary-sidebar")
        assert sidebar.is_visible(), "the chapter list is not shown on a desktop"
        _visible_toggle(page, "primary").click()
        page.wait_for_timeout(400)
        assert not sidebar.is_visible() or sidebar.bounding_box()["width"] < 2, (
            "the menu button did not hide the chapter list")
        assert not _drawer_open(page, "primary"), "on a desktop the menu opened a dialog"
        _visible_toggle(page, "primary").click()
        page.wait_for_timeout(400)
        assert sidebar.is_visible() and sidebar.bounding_box()["width"] > 150, (
            "the menu button did not bring the chapter list back")
        assert log.page_errors == []
    finally:
        page.close()


def test_overflow_check_catches_a_wide_line(phone):
    """The sideways-scroll check can fail: a long unbreakable word widens the page."""
    page, log = _open(phone, site_pages()[0])
    try:
        page.evaluate("""() => { const p = document.createElement('p');
            p.style.whiteSpace = 'nowrap'; p.textContent = 'x'.repeat(400);
            document.querySelector('article').appendChild(p); }""")
        with pytest.raises(AssertionError, match="scrolls sideways"):
            _assert_no_overflow(page, "probe")
    finally:
        page.close()



def test_a_chapter_fetches_no_icon_font_no_icon_script_and_no_mathjax(desktop):
    """Formulas, header icons and the admonitions' icons are drawn without any of them."""
    page, log = _open(desktop, FOCUS_PAGE)
    try:
        page.wait_for_timeout(1000)
        fetched = page.evaluate(
            "() => performance.getEntriesByType('resource').map(e => e.name)")
        unwanted = [u for u in fetched if "fontawesome" in u.lower() or "mathjax" in u.lower()]
        assert unwanted == [], f"{FOCUS_PAGE} fetched {unwanted}"
        assert page.locator("mjx-container svg").count() > 10, "the formulas are not drawn"
        assert page.locator(".primary-toggle svg.svg-inline--fa").count() == 1
        titles = page.locator(".admonition > .admonition-title")
        assert titles.count() > 0, f"{FOCUS_PAGE} has no admonition to check"
        icon = titles.first.evaluate("""t => { const s = getComputedStyle(t, '::after');
            return [s.maskImage || s.webkitMaskImage, s.width]; }""")
        assert icon[0].startswith('url("data:image/svg+xml') and icon[1] != "auto", icon
    finally:
        page.close()


FOCUSED = """() => { const e = document.activeElement;
    return e && e !== document.body ? e.className : null; }"""


@pytest.mark.parametrize("page_name", ["chapters/preference.html", "chapters/regression.html"])
def test_a_keyboard_reader_on_a_phone_gets_focus_back_from_each_drawer_and_the_colour_button(
        phone, page_name):
    page, log = _open(phone, page_name)
    try:
        for kind in ("primary", "secondary"):
            toggle = _visible_toggle(page, kind)
            toggle.focus()
            page.keyboard.press("Enter")
            page.wait_for_timeout(250)
            assert _drawer_open(page, kind), (
                f"{page_name}: Enter on the {kind} button opened nothing")
            page.keyboard.press("Escape")
            page.wait_for_timeout(250)
            assert not _drawer_open(page, kind), f"{page_name}: Escape left the {kind} drawer open"
            focused = page.evaluate(FOCUSED)
            assert focused and f"{kind}-toggle" in focused, (
                f"{page_name}: after Escape closes the {kind} drawer, focus is on {focused!r}, "
                "not on the button that opened it")
            assert page.evaluate(VISIBLE_TOOLTIPS) == []

        # The colour-mode button changes the theme and keeps focus, so Tab goes on from it.
        switch = page.locator(".theme-switch-button:visible").first
        switch.focus()
        before = page.evaluate("() => document.documentElement.dataset.theme")
        page.keyboard.press("Enter")
        page.wait_for_timeout(250)
        assert page.evaluate("() => document.documentElement.dataset.theme") != before
        focused = page.evaluate(FOCUSED)
        assert focused and "theme-switch-button" in focused, (
            f"{page_name}: after Enter on the colour-mode button focus is on {focused!r}")

        # A link followed from the keyboard in a drawer leaves focus on its section's way,
        # not back on the menu button.
        _visible_toggle(page, "secondary").focus()
        page.keyboard.press("Enter")
        page.wait_for_timeout(250)
        link = page.locator("#pst-secondary-sidebar-modal a.nav-link:visible").last
        anchor = link.get_attribute("href")
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_timeout(400)
        assert not _drawer_open(page, "secondary")
        assert urlparse(page.url).fragment == anchor.lstrip("#")
        focused = page.evaluate(FOCUSED) or ""
        assert "secondary-toggle" not in focused, (
            f"{page_name}: after following {anchor} focus went back to the contents button")
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.close()


def test_the_desktop_menu_button_keeps_focus_when_pressed_from_the_keyboard(desktop):
    page, log = _open(desktop, "chapters/regression.html")
    try:
        sidebar = page.locator("#pst-primary-sidebar")
        for shown in (False, True):
            _visible_toggle(page, "primary").focus()
            page.keyboard.press("Enter")
            page.wait_for_timeout(400)
            assert (sidebar.is_visible() and sidebar.bounding_box()["width"] > 150) == shown, (
                "Enter on the menu button did not hide or show the chapter list")
            focused = page.evaluate(FOCUSED)
            assert focused and "primary-toggle" in focused, (
                f"after Enter on the menu button focus is on {focused!r}, not on the button")
        assert log.page_errors == []
    finally:
        page.close()


def test_a_tooltip_shown_on_keyboard_focus_goes_away_with_escape(desktop):
    page, log = _open(desktop, "chapters/regression.html")
    try:
        button = page.locator(".theme-switch-button:visible").first
        button.focus()
        page.wait_for_function(f"({VISIBLE_TOOLTIPS})().length > 0", timeout=5_000)
        assert page.evaluate(VISIBLE_TOOLTIPS) == ["Color mode"]
        page.keyboard.press("Escape")
        page.wait_for_timeout(500)
        assert page.evaluate(VISIBLE_TOOLTIPS) == [], "Escape left the tooltip on screen"
        focused = page.evaluate(FOCUSED)
        assert focused and "theme-switch-button" in focused, "Escape moved focus"
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.close()
