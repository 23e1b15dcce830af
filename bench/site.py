"""Benchmark the site: build times, widget update latency in the browser, page weights.

Run with ``make bench`` (after ``make book``), or name parts: ``bench/site.py weights
paint``. Prints:

- cold build time (a copy of the book with no cache: every chapter executes) and the
  no-change rebuild time of that copy;
- each page's bytes on a first visit by type (HTML, the widget state it embeds,
  JavaScript and of it the widget runtime, CSS, fonts, images), gzip-compressed as a web
  server sends them (``tests/page_weight.py``), and the mean over the chapter pages;
- for every widget control on the site, the latency from the control's input event to
  the redrawn SVG, measured in the page (median and 95th percentile of 50 moves);
- for every page with widgets, from navigation: DOMContentLoaded, the first visible plot
  (the picture drawn at build time), the figures ready (the live figure in place) and the
  first live plot: the first key press on a control that redraws a plot (presses start as
  soon as the page is open, one about every 10 ms, and alternate right and left); and the
  layout shift (PerformanceObserver 'layout-shift'), on a desktop CPU and with the CPU
  slowed 4x (CDP ``Emulation.setCPUThrottlingRate``) as on a phone; the cache is off, as
  on a first visit. Median and range over PAINT_RUNS loads.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import browser, serve  # noqa: E402
from page_weight import TYPES, page_weight  # noqa: E402
from test_site_browser import site_pages  # noqa: E402

from losslab.site import build  # noqa: E402

BOOK_FILES = ["_config.yml", "_toc.yml", "intro.md", "chapters", "exercises", "site_assets"]
MOVES = 50
PAINT_RUNS = 5

# Records in ms since navigation: DOMContentLoaded, when a plot is first visible, when the
# first figure is live in its place, when a key press first redraws a plot (a plot's
# data-frame changes value), and the layout shift as it accrues.
PAINT_PROBE = """(() => {
  const t = window.__paint = { visible: null, ready: null, live: null, shift: 0, dcl: null };
  document.addEventListener('DOMContentLoaded', () => { t.dcl = performance.now(); });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) t.shift += e.value;
  }).observe({ type: 'layout-shift', buffered: true });
  new MutationObserver((records) => {
    for (const r of records) {
      if (t.live === null && r.oldValue !== null &&
          r.oldValue !== r.target.getAttribute('data-frame')) t.live = performance.now();
    }
  }).observe(document, { subtree: true, attributes: true, attributeOldValue: true,
                         attributeFilter: ['data-frame'] });
  const shown = (svg) => {
    const r = svg.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(svg).visibility !== 'hidden';
  };
  function tick() {
    const now = performance.now();
    if (t.visible === null) {
      for (const svg of document.querySelectorAll('svg.ll-panel')) {
        if (svg.querySelector('.ll-series') && shown(svg)) { t.visible = now; break; }
      }
    }
    if (t.ready === null && document.querySelector('.ll-slot.ll-live')) t.ready = now;
    if (t.visible === null || t.ready === null) requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();"""

# Focus the first live control of the page (a slider if there is one) and name the key
# that moves it; null while there is none. Knows this runtime's native controls and the
# ipywidgets controls the site had before, so both can be measured by one script.
FIRST_CONTROL_JS = """(forward) => {
  const pick = document.querySelector(
      '.losslab-figure input[type=range]:not(:disabled), .losslab-figure .noUi-handle') ||
    document.querySelector('.losslab-figure select:not(:disabled)');
  if (!pick) return null;
  if (document.activeElement !== pick) pick.focus();
  if (pick.tagName === 'SELECT') return forward ? 'ArrowDown' : 'ArrowUp';
  return forward ? 'ArrowRight' : 'ArrowLeft';
}"""

LATENCY_JS = """async ([figIndex, ctlIndex, moves]) => {
  const fig = document.querySelectorAll('.losslab-figure')[figIndex];
  const plot = fig.querySelector('.losslab-plot');
  const target = fig.querySelectorAll(CONTROLS)[ctlIndex];
  target.focus();
  let dir = 0;
  const times = [];
  while (times.length < moves) {
    const changed = new Promise((resolve) => {
      const obs = new MutationObserver(() => { obs.disconnect(); resolve(performance.now()); });
      obs.observe(plot, { attributes: true, attributeFilter: ['data-frame'] });
      setTimeout(() => { obs.disconnect(); resolve(null); }, 1000);
    });
    const t0 = performance.now();
    if (target.tagName === 'SELECT') {
      // A select moves on its own keyboard handling; move it the same way and say so.
      const n = target.options.length;
      target.selectedIndex = Math.max(0, Math.min(n - 1, target.selectedIndex + (dir ? -1 : 1)));
      target.dispatchEvent(new Event('change', { bubbles: true }));
    } else if (target.tagName === 'INPUT') {
      // A native range input: the value a key press would give, then its input event.
      const v = Number(target.value) + (dir ? -1 : 1);
      if (v < Number(target.min) || v > Number(target.max)) { dir = 1 - dir; continue; }
      target.value = String(v);
      target.dispatchEvent(new Event('input', { bubbles: true }));
    } else {
      const key = dir ? 'ArrowLeft' : 'ArrowRight';
      target.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true }));
    }
    const t1 = await changed;
    if (t1 === null) { dir = 1 - dir; continue; }
    times.push(t1 - t0);
  }
  return times;
}"""
CONTROLS = ("'.ll-control input[type=range], .ll-control select, "
            ".widget-hslider .noUi-handle, .widget-dropdown select'")
LATENCY_JS = LATENCY_JS.replace("CONTROLS", CONTROLS)


def timed_build(book: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = build.build(book)
    if proc.returncode:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    return time.perf_counter() - start, proc.returncode


def build_times() -> None:
    with tempfile.TemporaryDirectory(prefix="losslab-bench-") as tmp:
        book = Path(tmp) / "book"
        book.mkdir()
        for name in BOOK_FILES:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, book / name)
            else:
                shutil.copy(src, book / name)
        cold, rc1 = timed_build(book)
        warm, rc2 = timed_build(book)
        if rc1 or rc2:
            raise SystemExit(f"bench build failed (exit codes {rc1}, {rc2})")
        print(f"cold build (every chapter executes): {cold:7.1f} s")
        print(f"no-change rebuild:                   {warm:7.1f} s   (target < 10 s)")


def kb(n: float) -> str:
    return f"{n / 1000:,.1f}"


def page_weights_and_latency() -> None:
    html = ROOT / "_build" / "html"
    if not (html / "index.html").is_file():
        raise SystemExit("build the book first: make book")
    cols = ["html", "widget state", "js", "css", "fonts", "images"]
    print("\npage weight on a first visit, kB gzip-compressed (raw kB in brackets for JS); "
          "'runtime' is the widget runtime, part of 'js'")
    print(f"{'page':34} " + " ".join(f"{c:>12}" for c in cols) + f" {'runtime':>8} {'total':>8}")
    latencies = []
    chapters = []

    def ready(page):
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if views:
            page.wait_for_function(
                "n => document.querySelectorAll('.losslab-figure .losslab-plot').length >= n",
                arg=views, timeout=60_000)

    with serve(html) as base, browser() as context:
        for name in site_pages():
            w = page_weight(context, base + name, html, ready)
            if name.startswith("chapters/"):
                chapters.append(w)
            cells = [kb(w.compressed[c]) + (f" [{kb(w.raw[c])}]" if c == "js" else "")
                     for c in cols]
            print(f"{name:34} " + " ".join(f"{c:>12}" for c in cells)
                  + f" {kb(w.runtime_compressed):>8} {kb(w.total_compressed):>8}")
        if chapters:
            mean = {c: statistics.mean(w.compressed[c] for w in chapters) for c in TYPES}
            print(f"{'mean of ' + str(len(chapters)) + ' chapter pages':34} "
                  + " ".join(f"{kb(mean[c]):>12}" for c in cols)
                  + f" {kb(statistics.mean(w.runtime_compressed for w in chapters)):>8}"
                  + f" {kb(statistics.mean(w.total_compressed for w in chapters)):>8}")
        for name in site_pages():
            page = context.new_page()
            page.goto(base + name, wait_until="load")
            ready(page)
            figs = page.locator(".losslab-figure")
            for f in range(figs.count()):
                title = figs.nth(f).locator(".losslab-plot").get_attribute("aria-label")
                n_ctl = page.evaluate(f"(f) => document.querySelectorAll('.losslab-figure')[f]"
                                      f".querySelectorAll({CONTROLS}).length", f)
                for c in range(n_ctl):
                    times = page.evaluate(LATENCY_JS, [f, c, MOVES])
                    latencies.append((name, title, c, times))
            page.close()
    print(f"\nwidget update latency, input event to redrawn SVG ({MOVES} moves each, ms)")
    print(f"{'page':32} {'widget / control':52} {'median':>7} {'p95':>7}")
    for name, title, c, times in latencies:
        times = sorted(times)
        p95 = times[int(0.95 * (len(times) - 1))]
        print(f"{name:32} {title[:46] + ' / ' + str(c):52} {statistics.median(times):7.2f} "
              f"{p95:7.2f}")
    if latencies:
        all_times = sorted(t for *_, times in latencies for t in times)
        print(f"all controls: median {statistics.median(all_times):.2f} ms, p95 "
              f"{all_times[int(0.95 * (len(all_times) - 1))]:.2f} ms, max {all_times[-1]:.2f} "
              f"ms over {len(all_times)} moves (target: within one 16 ms frame)")


def _paint_run(context, url: str, throttle: float) -> dict:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    page.add_init_script(PAINT_PROBE)
    page.goto(url, wait_until="commit")
    # Press a key on the first live control about every 10 ms until a plot redraws.
    forward = True
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        key = page.evaluate(FIRST_CONTROL_JS, forward)
        if key:
            page.keyboard.press(key)
            forward = not forward
        if page.evaluate("() => window.__paint && window.__paint.live !== null"):
            break
        page.wait_for_timeout(10)
    else:
        raise SystemExit(f"{url}: no key press redrew a plot within 60 s")
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.__paint.ready !== null && window.__paint.visible !== null",
                           timeout=60_000)
    page.wait_for_timeout(500)
    result = page.evaluate("() => window.__paint")
    cdp.detach()
    page.close()
    return result


def first_paint(only: list[str] | None = None) -> None:
    """From navigation: DOMContentLoaded, a visible plot, figures ready, a live plot (first
    key press that redraws); layout shift; desktop and 4x CPU. ``only``: these pages."""
    html = ROOT / "_build" / "html"
    pages = [n for n in site_pages() if "ll-slot" in (html / n).read_text()
             and (not only or n in only)]
    print(f"\nfirst paint: ms from navigation, median [min-max] of {PAINT_RUNS} cold loads")
    keys = ("dcl", "visible", "ready", "live", "shift")
    print(f"{'page':26} {'CPU':>4} {'DOMContentLoaded':>17} {'plot visible':>17} "
          f"{'figures ready':>17} {'plot live':>17} {'live - DCL':>17} {'layout shift':>19}")
    summary = {}
    with serve(html) as base, browser() as context:
        for throttle in (1, 4):
            for name in pages:
                runs = [_paint_run(context, base + name, throttle) for _ in range(PAINT_RUNS)]
                for r in runs:
                    r["after"] = r["live"] - r["dcl"]
                cols = []
                for key in ("dcl", "visible", "ready", "live", "after", "shift"):
                    vals = sorted(r[key] for r in runs)
                    summary.setdefault((throttle, key), []).extend(vals)
                    f = "{:.3f}" if key == "shift" else "{:.0f}"
                    cols.append(f"{f.format(statistics.median(vals))} "
                                f"[{f.format(vals[0])}-{f.format(vals[-1])}]")
                print(f"{name:26} {throttle:>3}x " + " ".join(
                    f"{c:>17}" if i < 5 else f"{c:>19}" for i, c in enumerate(cols)))
    del keys
    for throttle in (1, 4):
        parts = []
        for key, name in (("dcl", "DOMContentLoaded"), ("visible", "plot visible"),
                          ("ready", "figures ready"), ("live", "plot live"),
                          ("after", "live after DCL")):
            vals = summary[(throttle, key)]
            parts.append(f"{name} median {statistics.median(vals):.0f} ms "
                         f"[{min(vals):.0f}-{max(vals):.0f}]")
        print(f"all pages, CPU {throttle}x: " + ", ".join(parts)
              + f", layout shift max {max(summary[(throttle, 'shift')]):.3f}")


def main(argv: list[str]) -> None:
    """Every part, or only those named: ``build``, ``weights`` (with latency), ``paint``;
    ``--pages a.html,b.html`` limits ``paint`` to those pages."""
    only = None
    if "--pages" in argv:
        at = argv.index("--pages")
        if at + 1 >= len(argv):
            raise SystemExit("--pages needs a comma-separated list of pages")
        only = argv[at + 1].split(",")
        argv = argv[:at] + argv[at + 2:]
    parts = {"build": build_times, "weights": page_weights_and_latency,
             "paint": lambda: first_paint(only)}
    unknown = [a for a in argv if a not in parts]
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; choose from {sorted(parts)}")
    for name, part in parts.items():
        if not argv or name in argv:
            part()


if __name__ == "__main__":
    main(sys.argv[1:])
