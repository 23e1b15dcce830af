"""Benchmark the site: build times, widget update latency in the browser, page weights.

Run with ``make bench`` (after ``make book``). Prints:

- cold build time (a copy of the book with no cache: every chapter executes) and the
  no-change rebuild time of that copy;
- for every widget control on the site, the latency from the control's keyboard input
  event to the redrawn SVG, measured in the page (median and 95th percentile of 50 moves);
- each page's weight: its HTML, the widget state embedded in it, and every byte the
  browser fetched to show it;
- for every page with widgets, the time from navigation to the first visible plot (the
  picture drawn at build time) and to the first live plot, and the layout shift while
  the figures turn live (PerformanceObserver 'layout-shift'), on a desktop CPU and with
  the CPU slowed 4x (CDP ``Emulation.setCPUThrottlingRate``) as on a phone; the cache is
  off, as on a first visit. Median and range over PAINT_RUNS loads.
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

from browser import PageLog, browser, open_page, serve  # noqa: E402
from test_site_browser import site_pages  # noqa: E402

from losslab.site import build  # noqa: E402

BOOK_FILES = ["_config.yml", "_toc.yml", "intro.md", "chapters", "exercises", "site_assets"]
MOVES = 50
PAINT_RUNS = 5

# Records, from the first animation frame on, when a plot is first visible and when the
# first figure is live, in ms since navigation; and the layout shift as it accrues.
PAINT_PROBE = """(() => {
  const t = window.__paint = { visible: null, live: null, shift: 0, dcl: null };
  document.addEventListener('DOMContentLoaded', () => { t.dcl = performance.now(); });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) t.shift += e.value;
  }).observe({ type: 'layout-shift', buffered: true });
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
    if (t.live === null && document.querySelector('.ll-slot.ll-live')) t.live = now;
    if (t.visible === null || t.live === null) requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();"""

LATENCY_JS = """async ([figIndex, ctlIndex, moves]) => {
  const fig = document.querySelectorAll('.losslab-figure')[figIndex];
  const plot = fig.querySelector('.losslab-plot');
  const ctl = fig.querySelectorAll('.widget-hslider, .widget-dropdown')[ctlIndex];
  const target = ctl.querySelector('.noUi-handle') || ctl.querySelector('select');
  target.focus();
  const keys = ctl.querySelector('select') ? ['ArrowDown', 'ArrowUp'] : ['ArrowRight', 'ArrowLeft'];
  let dir = 0;
  const times = [];
  while (times.length < moves) {
    const changed = new Promise((resolve) => {
      const obs = new MutationObserver(() => { obs.disconnect(); resolve(performance.now()); });
      obs.observe(plot, { attributes: true, attributeFilter: ['data-frame'] });
      setTimeout(() => { obs.disconnect(); resolve(null); }, 200);
    });
    const t0 = performance.now();
    const ev = { key: keys[dir], bubbles: true, cancelable: true };
    target.dispatchEvent(new KeyboardEvent('keydown', ev));
    if (target.tagName === 'SELECT') {
      // A select moves on its own keyboard handling; move it the same way and say so.
      const n = target.options.length;
      target.selectedIndex = Math.max(0, Math.min(n - 1, target.selectedIndex + (dir ? -1 : 1)));
      target.dispatchEvent(new Event('change', { bubbles: true }));
    }
    const t1 = await changed;
    if (t1 === null) { dir = 1 - dir; continue; }
    times.push(t1 - t0);
  }
  return times;
}"""


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


def page_weights_and_latency() -> None:
    html = ROOT / "_build" / "html"
    if not (html / "index.html").is_file():
        raise SystemExit("build the book first: make book")
    print("\npage weights (bytes)")
    print(f"{'page':38} {'html':>10} {'widget state':>13} {'all fetched':>12}")
    latencies = []
    with serve(html) as base, browser() as context:
        for name in site_pages():
            text = (html / name).read_text()
            state_start = text.find('application/vnd.jupyter.widget-state+json">')
            state = (text.find("</script>", state_start) - state_start) if state_start >= 0 else 0
            log = PageLog()
            page = open_page(context, base + name, log)
            page.wait_for_timeout(300)  # the index page redirects to the home page
            page.wait_for_load_state("load")
            sizes = page.evaluate(
                "() => performance.getEntriesByType('resource').map(e => e.decodedBodySize)"
                ".concat([performance.getEntriesByType('navigation')[0].decodedBodySize])")
            print(f"{name:38} {len(text.encode()):>10,} {state:>13,} {sum(sizes):>12,}")
            views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
            if views:
                page.wait_for_function(
                    "n => document.querySelectorAll('.losslab-figure .losslab-plot').length >= n",
                    arg=views)
                figs = page.locator(".losslab-figure")
                for f in range(figs.count()):
                    title = figs.nth(f).locator(".losslab-plot").get_attribute("aria-label")
                    n_ctl = figs.nth(f).locator(".widget-hslider, .widget-dropdown").count()
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
        all_times = [t for *_, times in latencies for t in times]
        print(f"all controls: median {statistics.median(all_times):.2f} ms over "
              f"{len(all_times)} moves (target: within one 16 ms frame)")


def _paint_run(context, url: str, throttle: float) -> dict:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    page.add_init_script(PAINT_PROBE)
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.__paint && window.__paint.live !== null",
                           timeout=60_000)
    page.wait_for_timeout(500)
    result = page.evaluate("() => window.__paint")
    page.close()
    return result


def first_paint() -> None:
    """Navigation to a visible plot and to a live one; layout shift; desktop and 4x CPU."""
    html = ROOT / "_build" / "html"
    pages = [n for n in site_pages() if "ll-slot" in (html / n).read_text()]
    print(f"\nfirst paint: ms from navigation, median [min-max] of {PAINT_RUNS} cold loads")
    print(f"{'page':28} {'CPU':>4} {'DOMContentLoaded':>19} {'plot visible':>19} "
          f"{'plot live':>19} {'layout shift':>20}")
    summary = {}
    with serve(html) as base, browser() as context:
        for throttle in (1, 4):
            for name in pages:
                runs = [_paint_run(context, base + name, throttle) for _ in range(PAINT_RUNS)]
                cols = []
                for key in ("dcl", "visible", "live", "shift"):
                    vals = sorted(r[key] for r in runs)
                    summary.setdefault((throttle, key), []).extend(vals)
                    f = "{:.3f}" if key == "shift" else "{:.0f}"
                    cols.append(f"{f.format(statistics.median(vals))} "
                                f"[{f.format(vals[0])}-{f.format(vals[-1])}]")
                print(f"{name:28} {throttle:>3}x {cols[0]:>19} {cols[1]:>19} {cols[2]:>19} "
                      f"{cols[3]:>20}")
    for throttle in (1, 4):
        vis, live = summary[(throttle, "visible")], summary[(throttle, "live")]
        shift = summary[(throttle, "shift")]
        print(f"all pages, CPU {throttle}x: plot visible median {statistics.median(vis):.0f} ms "
              f"[{min(vis):.0f}-{max(vis):.0f}], live median {statistics.median(live):.0f} ms "
              f"[{min(live):.0f}-{max(live):.0f}], layout shift max {max(shift):.3f}")


def main(argv: list[str]) -> None:
    """Every part, or only those named: ``build``, ``weights`` (with latency), ``paint``."""
    parts = {"build": build_times, "weights": page_weights_and_latency, "paint": first_paint}
    unknown = [a for a in argv if a not in parts]
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; choose from {sorted(parts)}")
    for name, part in parts.items():
        if not argv or name in argv:
            part()


if __name__ == "__main__":
    main(sys.argv[1:])
