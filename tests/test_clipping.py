"""No figure hides its own point: at every setting of every widget, each curve stays on its axes.

Every public function of every chapter's figure module (``losslab.figures.<chapter>``) that
is annotated to return a ``Figure`` and needs no argument is built here, and
``losslab.engine.clipping`` measures, for each curve and each setting of the controls, the
share of its points drawn outside the panel. More than 2% fails, unless ``ALLOWANCES``
grants a curve more, with the reason next to it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import losslab.figures
from losslab.engine import clipping, widgets

LIMIT = 0.02

#: (module, function) -> {(panel title, series label): allowed share, with the reason}.
ALLOWANCES: dict[tuple[str, str], dict[tuple[str, str], float]] = {}


def _figure_builders():
    found = []
    for info in pkgutil.iter_modules(losslab.figures.__path__):
        module = importlib.import_module(f"losslab.figures.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != module.__name__:
                continue
            if inspect.signature(fn).return_annotation not in ("widgets.Figure", widgets.Figure):
                continue
            if any(p.default is inspect.Parameter.empty
                   for p in inspect.signature(fn).parameters.values()):
                continue
            found.append((info.name, name, fn))
    return found


BUILDERS = _figure_builders()


def test_every_chapter_with_widgets_is_collected():
    modules = {m for m, _, _ in BUILDERS}
    assert {"regression", "binary", "multiclass", "multilabel", "beyond", "probabilistic",
            "margins", "sequences", "choosing", "scale", "why_losses", "reference"} <= modules
    assert len(BUILDERS) >= 24


@pytest.mark.parametrize("module,name,build", BUILDERS,
                         ids=[f"{m}.{n}" for m, n, _ in BUILDERS])
def test_no_curve_runs_off_its_axes(module, name, build):
    fig = build()
    bad = clipping.violations(fig, LIMIT, ALLOWANCES.get((module, name)))
    assert not bad, f"{module}.{name}:\n" + "\n".join(f"  {c}" for c in bad)


# --- the measure itself -------------------------------------------------------------------------

def _fig(ylim=None, scale=(1.0, 4.0)):
    x = np.linspace(-1.0, 1.0, 101)
    return widgets.figure(
        [widgets.Panel("p", "x", "y", [widgets.Series("line", x, lambda k: k * x, ("k",))],
                       ylim=ylim)],
        [widgets.slider("k", list(scale), label="k")],
    )


def test_a_fixed_axis_that_cuts_a_curve_is_measured_at_each_setting():
    fig = _fig(ylim=(-2.0, 2.0))
    shares = {c.setting: c.share for c in clipping.measure(fig)}
    assert shares[("1",)] == 0.0
    # y = 4x leaves [-2, 2] where |x| > 0.5: half its length
    assert shares[("4",)] == pytest.approx(0.5, abs=0.005)
    (bad,) = clipping.violations(fig)
    assert bad.setting == ("4",) and "lies outside its axes at (4)" in str(bad)
    assert clipping.violations(fig, allowances={("p", "line"): 0.6}) == []


def test_axes_that_follow_the_setting_keep_every_curve_on_them():
    fig = _fig(scale=(1.0, 10.0))   # no limits given: the y axis follows k
    assert fig.plot.spec["panels"][0]["follow"]["y"]
    assert max(c.share for c in clipping.measure(fig)) == 0.0


def test_infinities_and_nan_are_gaps_and_only_finite_points_are_measured():
    x = np.linspace(0.0, 1.0, 10)
    y = np.where(x < 0.35, np.inf, 2 * x)   # inf at 4 points, then 2x on a 0..1 axis
    y[-1] = np.nan
    fig = widgets.figure([widgets.Panel("p", "x", "y", [widgets.Series("s", x, y)],
                                        ylim=(0.0, 1.0))])
    (clip,) = clipping.measure(fig)
    # 5 finite points, x = 4/9 .. 8/9: the line from 4/9 to 8/9 leaves the axis at x = 1/2
    assert clip.points == 5 and clip.share == pytest.approx(0.875, abs=0.02)


def test_a_line_of_two_points_is_measured_along_its_length():
    ends = np.array([0.0, 1.0])
    fig = widgets.figure([widgets.Panel("p", "x", "y", [widgets.Series("s", ends, 2 * ends)],
                                        ylim=(0.0, 1.0))])
    (clip,) = clipping.measure(fig)
    assert clip.share == pytest.approx(0.5, abs=0.07)


def test_an_allowance_for_a_curve_the_figure_does_not_draw_is_an_error():
    with pytest.raises(ValueError, match="does not draw"):
        clipping.violations(_fig(), allowances={("p", "nothing"): 0.1})
