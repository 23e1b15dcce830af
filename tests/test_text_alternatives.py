"""What a screen reader hears of every widget equals what torch computes.

Each panel's text alternative names, for every series, its lowest and highest value and
where they lie (or, for a few marked points, each point). The words are written by the
figure's own front end (``lossplot.js``, run here in Node exactly as on the page) from the
float64 key values the figure ships; the numbers are checked against torch's curves from
``expected_curves`` at a few settings of every widget of the course, within the three
significant digits they are read with.
"""

from __future__ import annotations

import functools
import html
import importlib
import inspect
import itertools
import pkgutil
import re

import lossplot_js
import numpy as np
import pytest
from expected_curves import EXPECTED

import losslab.figures
from losslab.engine import widgets

NUMBER = r"(−?\d+(?:\.\d+)?(?:e[+−]\d+)?|infinity|minus infinity|not a number)"


def builders() -> list:
    """Every function of ``losslab.figures`` that makes a figure with no argument."""
    found = []
    for info in pkgutil.iter_modules(losslab.figures.__path__):
        module = importlib.import_module(f"losslab.figures.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or name.startswith("_"):
                continue
            sig = inspect.signature(fn)
            ret = sig.return_annotation
            if "Figure" not in str(ret):
                continue
            if any(p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                   for p in sig.parameters.values()):
                continue
            found.append(fn)
    return found


@functools.cache
def built(fn) -> widgets.Figure:
    return fn()


def a_few_settings(fig: widgets.Figure) -> list[tuple[int, ...]]:
    """The opening setting, every control at its first and at its last value, and one mixed."""
    sizes = [c["n"] for c in fig.plot.spec["controls"]]
    start = tuple(c.index for c in fig.controls)
    picks = {start, tuple(0 for _ in sizes), tuple(n - 1 for n in sizes),
             tuple((n - 1) * (i % 2) for i, n in enumerate(sizes)),
             tuple(n // 2 for n in sizes)}
    return sorted(picks)


WORDS = {"infinity": np.inf, "minus infinity": -np.inf, "not a number": np.nan}


def read(text: str) -> float:
    """A number as the text alternative says it, back as a float."""
    return WORDS[text] if text in WORDS else float(text.replace("−", "-"))


# Below this, a value is rounding noise of the computation (the figures equal torch's
# curves to 1e-7, tests/test_new_widgets.py), whose digits mean nothing.
NOISE = 1e-7


def close(said: float, true: float) -> bool:
    """Whether ``said`` is ``true`` read with three significant digits."""
    if not np.isfinite(true):
        return said == true or (np.isnan(said) and np.isnan(true))
    return abs(said - true) <= 5.001e-3 * abs(true) + NOISE


def check_sentence(text: str, label: str, xname: str, x: np.ndarray, y: np.ndarray,
                   kind: str, where: str) -> None:
    # Each sentence starts after ". " (the first after the panel's title).
    start = text.find(f". {label}: ")
    assert start >= 0, f"{where}: the text alternative never names {label!r}:\n{text}"
    said = text[start + len(label) + 4:]
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        assert said.startswith("no finite value"), f"{where} / {label}: {said[:120]!r}"
        return
    if kind == "points" and len(y) <= widgets.POINTS_SAID:
        pairs = re.findall(NUMBER + " at " + re.escape(xname) + " = " + NUMBER,
                           said.split(". ")[0] if ". " in said else said)
        assert len(pairs) == int(ok.sum()), f"{where} / {label}: {said[:200]!r}"
        for (ys, xs), xv, yv in zip(pairs, x[ok], y[ok]):
            assert close(read(ys), yv) and close(read(xs), xv), (
                f"{where} / {label}: says {ys} at {xs}, torch gives {yv:.6g} at {xv:.6g}")
        return
    m = re.match(f"lowest {NUMBER} at {re.escape(xname)} = {NUMBER}, "
                 f"highest {NUMBER} at {re.escape(xname)} = {NUMBER}", said)
    assert m, f"{where} / {label}: cannot read {said[:200]!r}"
    low, x_low, high, x_high = map(read, m.groups())
    ys, xs = y[ok], x[ok]
    assert close(low, ys.min()), f"{where} / {label}: lowest said {low}, torch {ys.min():.6g}"
    assert close(high, ys.max()), f"{where} / {label}: highest said {high}, torch {ys.max():.6g}"
    # Where: a point of the curve at the said x whose value is the extreme (ties, and values
    # apart by rounding noise only, allowed).
    tie = max(1e-6 * np.ptp(ys), NOISE)
    for said_x, extreme in ((x_low, ys.min()), (x_high, ys.max())):
        at = [i for i in range(len(xs)) if close(said_x, xs[i])]
        assert at and any(abs(ys[i] - extreme) <= tie for i in at), (
            f"{where} / {label}: says the {'lowest' if extreme == ys.min() else 'highest'} "
            f"value is at {said_x}; torch has {extreme:.6g} at "
            f"{xs[ys == extreme][:3]}")
    broken = int((~ok).sum())
    if broken:
        assert f"{broken} of {len(y)} values not finite" in said.split(". ")[0]


@pytest.mark.parametrize("build", builders(), ids=lambda b: f"{b.__module__.split('.')[-1]}."
                         f"{b.__name__}")
def test_every_widget_says_the_torch_values(build):
    fig = built(build)
    spec = fig.plot.spec
    title = spec["title"]
    assert title in EXPECTED, f"{title!r} has no expected curves in tests/expected_curves.py"
    settings = a_few_settings(fig)
    texts = lossplot_js.calls(*[("describe", [lossplot_js.state_of(fig, idx), list(idx)])
                                for idx in settings])
    for idx, panel_texts in zip(settings, texts):
        shown = {c["label"]: c["labels"][i] for c, i in zip(spec["controls"], idx)}
        expected = EXPECTED[title](shown)
        for panel, text in zip(spec["panels"], panel_texts):
            assert text.startswith(panel["title"] + ". ")
            for s in panel["series"]:
                x, y = (np.asarray(a, dtype=np.float64)
                        for a in expected[(panel["title"], s["label"])])
                x = np.broadcast_to(x, y.shape)
                check_sentence(text, s["label"], panel["xname"], x, y, s["kind"],
                               f"{title} / {panel['title']} at {shown}")


def test_the_focal_widget_finds_its_true_lowest_value():
    """Read from the 16-bit drawing codes, this said "lowest 2.51e-13 at p_t = 0.96" (every
    value near 0 shares code 0); the float64 curve's lowest is about 2.5e-7, at p_t = 0.99."""
    from losslab.figures import beyond

    fig = beyond.focal_explorer()
    (texts,) = lossplot_js.calls(("describe", [lossplot_js.state_of(fig),
                                               [c.index for c in fig.controls]]))
    loss = next(t for t in texts if t.startswith("loss against p_t"))
    m = re.search(r"focal \(γ, α\): lowest " + NUMBER + " at p_t = " + NUMBER, loss)
    assert m, loss
    low, where = read(m.group(1)), read(m.group(2))
    x, y = fig.curves["loss against p_t"]["focal (γ, α)"]
    sel = tuple(c.index for c in fig.controls)
    assert close(low, y[sel].min()) and 1e-7 < low < 1e-6, loss
    assert where == pytest.approx(x[sel][np.argmin(y[sel])], rel=5e-3) and where > 0.98


def test_a_gradient_negative_everywhere_never_has_a_positive_highest_value():
    from losslab.figures import beyond

    fig = beyond.focal_explorer()
    panel = next(p for p in fig.plot.spec["panels"] if p["title"].startswith("gradient"))
    x, y = fig.curves[panel["title"]]["focal (γ, α)"]
    negative = [idx for idx in itertools.product(*[range(c["n"]) for c in fig.plot.spec[
        "controls"]]) if (y[idx] < 0).all()]
    assert negative, "expected a setting where the focal gradient is negative everywhere"
    texts = lossplot_js.calls(*[("describe", [lossplot_js.state_of(fig, idx), list(idx)])
                                for idx in negative[:4]])
    for panels in texts:
        grad = next(t for t in panels if t.startswith("gradient"))
        m = re.search(r"focal \(γ, α\): lowest .*?, highest " + NUMBER, grad)
        assert m and read(m.group(1)) < 0, grad


def test_a_change_is_announced_briefly():
    """After a control moves, the live region says the new value and the marked points
    that moved with it, not every curve of every panel."""
    from losslab.figures import multiclass

    fig = multiclass.three_logits()
    idx = [c.index for c in fig.controls]
    idx[0] = (idx[0] + 1) % len(fig.controls[0].values)
    (said, texts) = lossplot_js.calls(
        ("announce", [lossplot_js.state_of(fig, idx), 0, idx]),
        ("describe", [lossplot_js.state_of(fig, idx), idx]))
    control = fig.plot.spec["controls"][0]
    assert said.startswith(f"{control['label']} {control['labels'][idx[0]]}."), said
    markers = [(p["title"], s["label"]) for p in fig.plot.spec["panels"] for s in p["series"]
               if s["kind"] == "points" and 0 in s["dims"] and s["n"] <= 2]
    assert markers, "expected a marked point that moves with the first control"
    for title, label in markers:
        assert f"{title}, {label}: " in said, said
    assert "lowest" not in said and len(said) < 160, said
    assert len(said) < 0.3 * len(" ".join(texts)), said


def test_build_time_words_are_the_live_words():
    """The picture drawn at build time carries the same sentences (one renderer)."""
    from losslab.engine import first_paint
    from losslab.figures import regression

    fig = regression.loss_curves()
    markup = first_paint.figure_html(lossplot_js.state_of(fig), "t")
    descs = [html.unescape(d) for d in re.findall(r'<p class="ll-desc" id="[^"]+" hidden>'
                                                  r"([^<]*)</p>", markup)]
    (texts,) = lossplot_js.calls(("describe", [lossplot_js.state_of(fig),
                                               [c.index for c in fig.controls]]))
    assert descs == texts and len(descs) == 2
