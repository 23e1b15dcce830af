"""The plot widget drawn in Python: the same markup as ``static/lossplot.js`` makes live.

The site puts it on the page at build time, so each figure is visible at first paint,
before any widget JavaScript has run; its classes are the live plot's, so it follows the
page's light or dark theme through ``lossplot.css``. When the live widget has drawn, it
takes this picture's place (see ``.ll-slot`` in ``lossplot.css``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np

from . import encoding

VIEW_W, VIEW_H = 360, 250
MARGIN = {"left": 52, "right": 12, "top": 10, "bottom": 40}


def state_indices(state: Mapping) -> list[int]:
    """The controls' current value indices from a LossPlot's widget state."""
    idx = []
    for i, c in enumerate(state["spec"]["controls"]):
        v = state.get(f"c{i}", 0)
        v = int(round(float(v))) if not isinstance(v, bool) else int(v)
        idx.append(min(c["n"] - 1, max(0, v)))
    return idx


def frame_of(dims: Sequence[int], idx: Sequence[int], controls: Sequence[Mapping]) -> int:
    f = 0
    for d in dims:
        f = f * controls[d]["n"] + idx[d]
    return f


def limits_at(panel: Mapping, idx: Sequence[int], controls) -> tuple[list, list]:
    """A panel's ``(xlim, ylim)`` at the setting ``idx`` (fixed or following it)."""
    follow = panel.get("follow")
    f = frame_of(follow["dims"], idx, controls) if follow else 0
    xlim = follow["x"][f] if follow and follow.get("x") else panel["xlim"]
    ylim = follow["y"][f] if follow and follow.get("y") else panel["ylim"]
    return xlim, ylim


def nice_ticks(lo: float, hi: float, count: int, categorical: bool = False) -> list[float]:
    """Round tick positions between ``lo`` and ``hi`` (whole numbers on a category axis)."""
    if categorical:
        return [float(t) for t in range(math.ceil(lo), math.floor(hi) + 1)]
    span = hi - lo
    if not span > 0:
        return [lo]
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks, t = [], math.ceil(lo / step - 1e-9) * step
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def fmt(v: float) -> str:
    """A tick label, as the live plot writes it."""
    a = abs(v)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        mant, exp = f"{v:.0e}".split("e")
        return f"{mant}e{int(exp):+d}"
    text = f"{float(f'{v:.4g}'):.12g}"
    return text


def say(v: float) -> str:
    """A number as the text alternative reads it: three significant digits, a real minus."""
    if not math.isfinite(v):
        return "not a number" if math.isnan(v) else ("infinity" if v > 0 else "minus infinity")
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        mant, exp = f"{v:.2e}".split("e")
        text = f"{mant}e{int(exp):+d}"
    else:
        text = f"{float(f'{v:.3g}'):.12g}"
    return text.replace("-", "\u2212", 1)


def describe_series(label: str, kind: str, xs: np.ndarray, ys: np.ndarray, xname: str) -> str:
    """One curve's key values in words, as the live plot's text alternative says them."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return f"{label}: no finite value at this setting"
    if kind == "points" and ok.sum() <= 6:
        pts = [f"{say(y)} at {say(x)}" for x, y in zip(xs[ok], ys[ok])]
        return f"{label}: {', '.join(pts)}"
    where = np.flatnonzero(ok)
    lo = where[np.argmin(ys[ok])]
    hi = where[np.argmax(ys[ok])]
    broken = int((~ok).sum())
    gaps = f"; {broken} of {len(xs)} values not finite" if broken else ""
    return (f"{label}: lowest {say(ys[lo])} at {xname} = {say(xs[lo])}, "
            f"highest {say(ys[hi])} at {xname} = {say(xs[hi])}{gaps}")


def _column(ref: Mapping, n: int, frame: int, blocks, codes: np.ndarray) -> np.ndarray:
    if "linspace" in ref:
        a, b, m = ref["linspace"]
        # The browser's own arithmetic, so both draw the very same points.
        return a + (b - a) * np.arange(int(m)) / max(int(m) - 1, 1)
    block = blocks[ref["block"]]
    start = block["offset"] + (frame * n if ref["perFrame"] else 0)
    return encoding.decode(codes[start:start + n], block["lo"], block["hi"])


def _attrs(**kw) -> str:
    return " ".join(f'{k.rstrip("_").replace("_", "-")}="{html.escape(str(v))}"'
                    for k, v in kw.items())


def _tag(name: str, text: str | None = None, **attrs) -> str:
    """An SVG element; attribute names use ``_`` for ``-`` (and a trailing ``_`` to
    escape a keyword, as in ``class_``); ``text`` is escaped."""
    if text is None:
        return f"<{name} {_attrs(**attrs)}/>"
    return f"<{name} {_attrs(**attrs)}>{html.escape(text)}</{name}>"


def plot_html(state: Mapping, uid: str) -> str:
    """The live plot's markup (``div.losslab-plot``) for a LossPlot's widget ``state``."""
    spec = state["spec"]
    codes = encoding.unpack(state.get("data", "")) if state.get("data") else np.zeros(0, "<u2")
    controls = spec["controls"]
    idx = state_indices(state)
    px0, px1 = MARGIN["left"], VIEW_W - MARGIN["right"]
    py0, py1 = VIEW_H - MARGIN["bottom"], MARGIN["top"]
    figures = []
    for p, panel in enumerate(spec["panels"]):
        (x0, x1), (y0, y1) = limits_at(panel, idx, controls)

        def sx(x, x0=x0, x1=x1):
            return px0 + (x - x0) / (x1 - x0) * (px1 - px0)

        def sy(y, y0=y0, y1=y1):
            return py0 + (y - y0) / (y1 - y0) * (py1 - py0)

        axes = []
        for t in nice_ticks(x0, x1, 6, panel.get("categorical", False)):
            x = f"{sx(t):.1f}"
            axes.append(_tag("line", x1=x, x2=x, y1=py0, y2=py1, class_="ll-grid"))
            axes.append(_tag("text", fmt(t), x=x, y=py0 + 14, text_anchor="middle",
                             class_="ll-tick"))
        for t in nice_ticks(y0, y1, 5):
            y = float(f"{sy(t):.1f}")
            axes.append(_tag("line", x1=px0, x2=px1, y1=y, y2=y, class_="ll-grid"))
            axes.append(_tag("text", fmt(t), x=px0 - 5, y=f"{y + 4:g}", text_anchor="end",
                             class_="ll-tick"))
        if y0 < 0 < y1:
            axes.append(_tag("line", x1=px0, x2=px1, y1=sy(0), y2=sy(0), class_="ll-zero"))
        if x0 < 0 < x1:
            axes.append(_tag("line", x1=sx(0), x2=sx(0), y1=py0, y2=py1, class_="ll-zero"))
        box = {"x": px0, "y": py1, "width": px1 - px0, "height": py0 - py1}
        axes.append(_tag("rect", **box, class_="ll-frame"))
        axes.append(_tag("text", panel["xlabel"], x=(px0 + px1) / 2, y=VIEW_H - 6,
                         text_anchor="middle", class_="ll-label"))
        axes.append(_tag("text", panel["ylabel"], x=0, y=0, text_anchor="middle",
                         class_="ll-label",
                         transform=f"translate(12 {(py0 + py1) / 2:g}) rotate(-90)"))
        drawn, keys, sentences = [], [], []
        for s in panel["series"]:
            frame = frame_of(s["dims"], idx, controls)
            xs = _column(s["x"], s["n"], frame, spec["blocks"], codes)
            ys = _column(s["y"], s["n"], frame, spec["blocks"], codes)
            sentences.append(describe_series(s["label"], s["kind"], xs, ys, panel["xname"]))
            cls = f'll-series ll-c{s["color"]} ll-{s["style"]}'
            ok = np.isfinite(xs) & np.isfinite(ys)
            if s["kind"] == "points":
                dots = "".join(f'<circle cx="{sx(x):.2f}" cy="{sy(y):.2f}" r="3"/>'
                               for x, y in zip(xs[ok], ys[ok]))
                drawn.append(f'<g {_attrs(class_=cls + " ll-points", data_label=s["label"])}>'
                             f"{dots}</g>")
            else:
                d, pen = [], False
                for x, y, good in zip(xs, ys, ok):
                    if not good:
                        pen = False
                        continue
                    d.append(f'{"L" if pen else "M"}{sx(x):.2f},{sy(y):.2f}')
                    pen = True
                drawn.append(_tag("path", class_=cls, data_label=s["label"], fill="none",
                                  d="".join(d)))
            swatch = "ll-swatch ll-dot" if s["kind"] == "points" else "ll-swatch"
            keys.append(f'<span class="ll-key ll-c{s["color"]} ll-{s["style"]}">'
                        f'<span class="{swatch}" aria-hidden="true"></span>'
                        f'<span class="ll-key-text">{html.escape(s["label"])}</span></span>')
        clip = f"{uid}-clip-{p}"
        desc = f"{uid}-desc-{p}"
        label = f'{panel["title"]}: {panel["ylabel"]} against {panel["xlabel"]}'
        text = f'{panel["title"]}. {". ".join(sentences)}.'
        svg_attrs = _attrs(viewBox=f"0 0 {VIEW_W} {VIEW_H}", class_="ll-panel", role="img",
                           aria_label=label, aria_describedby=desc,
                           data_xdomain=f"{x0!r},{x1!r}", data_ydomain=f"{y0!r},{y1!r}",
                           data_xrange=f"{px0},{px1}", data_yrange=f"{py0},{py1}")
        figures.append(
            f'<figure class="ll-figure"><svg {svg_attrs} xmlns="http://www.w3.org/2000/svg">'
            f'<defs><clipPath id="{clip}">{_tag("rect", **box)}</clipPath></defs>'
            f'<g class="ll-axes">{"".join(axes)}</g>'
            f'<g clip-path="url(#{clip})">{"".join(drawn)}</g></svg>'
            f'<figcaption class="ll-caption">'
            f'<span class="ll-title">{html.escape(panel["title"])}</span>'
            f'{"".join(keys)}<p class="ll-sr-only ll-desc" id="{desc}">{html.escape(text)}</p>'
            f"</figcaption></figure>")
    settings = "; ".join(f'{c["label"]}: {c["labels"][i]}' for c, i in zip(controls, idx))
    readout = f"Showing {settings}." if controls else ""
    title = spec.get("title") or "loss plot"
    return (f'<div class="losslab-plot" role="group" aria-label="{html.escape(title)}">'
            f'<div class="ll-panels">{"".join(figures)}</div>'
            f'<p class="ll-readout">{html.escape(readout)}</p></div>')


def controls_html(state: Mapping) -> str:
    """The figure's controls at their starting values, as text in the live controls' places."""
    spec = state["spec"]
    idx = state_indices(state)
    items = "".join(
        f'<span class="ll-static-control ll-static-{c.get("kind", "slider")}">'
        f'<span class="ll-static-label">{html.escape(c["label"])}</span> '
        f'<span class="ll-static-value">{html.escape(c["labels"][i])}</span></span>'
        for c, i in zip(spec["controls"], idx))
    return f'<div class="ll-static-controls">{items}</div>' if items else ""


def figure_html(state: Mapping, uid: str) -> str:
    """The whole build-time picture of a figure: its controls' settings, then its plot."""
    return (f'<div class="ll-static losslab-figure-static">{controls_html(state)}'
            f"{plot_html(state, uid)}</div>")
