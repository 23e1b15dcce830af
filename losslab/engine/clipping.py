"""How much of each curve a figure draws outside its own axes, at every setting.

A widget whose axes cut off the behaviour its page asks the reader to look at teaches
nothing; this module measures it. It reads only what a :class:`~losslab.engine.widgets.Figure`
records: the computed values in ``Figure.curves`` and each panel's limits in
``Figure.plot.spec`` (fixed ``xlim`` / ``ylim``, or the per-setting limits of ``follow``).

The share of a curve outside its panel is the share of it, at one setting of the controls,
that falls outside the limits drawn at that setting: for a line, the share of its drawn
segments (each segment sampled at ``SAMPLES`` points, so a line of two points is measured
along its length); for points, the share of the markers. A point counts as outside
when its x or its y lies beyond the limits by more than a hair (``TOLERANCE`` of the axis
span). A value that is not finite (``nan``, ``±inf``) is drawn as a gap, as the live plot
and the build-time picture draw it, and counts as neither.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Share of an axis span by which a point may pass a limit and still count as drawn:
#: the line's own width, and the rounding of limits to six significant digits.
TOLERANCE = 1e-3
#: Points at which each segment of a line is sampled, its two ends included.
SAMPLES = 9


@dataclass(frozen=True)
class Clip:
    """One curve at one setting: the share of its points drawn outside the panel."""

    panel: str
    series: str
    setting: tuple[str, ...]  # the shown label of each control's value
    share: float              # 0..1 of the curve's finite points
    points: int               # how many finite points the curve has there

    def __str__(self) -> str:
        at = ", ".join(self.setting) or "the only setting"
        return (f"{self.share:.1%} of {self.series!r} in panel {self.panel!r} lies outside "
                f"its axes at ({at})")


def _frame(dims: Sequence[int], idx: Sequence[int], sizes: Sequence[int]) -> int:
    f = 0
    for d in dims:
        f = f * sizes[d] + idx[d]
    return f


def limits_at(panel: Mapping, idx: Sequence[int], sizes: Sequence[int]):
    """``(xlim, ylim)`` of a panel spec at the setting ``idx`` (one index per control)."""
    follow = panel.get("follow") or {}
    f = _frame(follow.get("dims", []), idx, sizes) if follow else 0
    xlim = follow["x"][f] if follow.get("x") else panel["xlim"]
    ylim = follow["y"][f] if follow.get("y") else panel["ylim"]
    return tuple(map(float, xlim)), tuple(map(float, ylim))


def _outside(values: np.ndarray, lim: tuple[float, float]) -> np.ndarray:
    lo, hi = lim
    slack = TOLERANCE * (hi - lo)
    return (values < lo - slack) | (values > hi + slack)


def _along_segments(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample points along each segment the plot draws: both ends finite, as the plot skips
    a point that is not. A lone finite point (between gaps) is kept as itself."""
    if x.size < 2:
        return x, y
    ok = np.isfinite(x) & np.isfinite(y)
    seg = ok[:-1] & ok[1:]
    t = np.linspace(0.0, 1.0, SAMPLES)[None, :]
    xs = x[:-1][seg, None] + (x[1:] - x[:-1])[seg, None] * t
    ys = y[:-1][seg, None] + (y[1:] - y[:-1])[seg, None] * t
    lone = ok.copy()
    lone[:-1] &= ~seg
    lone[1:] &= ~seg
    return np.concatenate([xs.ravel(), x[lone]]), np.concatenate([ys.ravel(), y[lone]])


def measure(fig) -> list[Clip]:
    """Every curve of ``fig`` at every setting of its controls, with its share outside.

    ``fig`` is a :class:`~losslab.engine.widgets.Figure`. Returns one :class:`Clip` per
    panel, series and setting (the product of all the figure's controls), in that order.
    """
    spec = fig.plot.spec
    sizes = [c["n"] for c in spec["controls"]]
    labels = [c["labels"] for c in spec["controls"]]
    out: list[Clip] = []
    for panel in spec["panels"]:
        computed = fig.curves[panel["title"]]
        for s in panel["series"]:
            x_all, y_all = computed[s["label"]]
            for idx in itertools.product(*[range(n) for n in sizes]):
                sel = tuple(idx[d] for d in s["dims"])
                x, y = x_all[sel], y_all[sel]
                xlim, ylim = limits_at(panel, idx, sizes)
                drawn = np.isfinite(x) & np.isfinite(y)
                n = int(drawn.sum())
                if s.get("kind", "line") == "line":
                    x, y = _along_segments(x, y)
                    drawn = np.isfinite(x) & np.isfinite(y)
                off = (_outside(x, xlim) | _outside(y, ylim)) & drawn
                share = float(off.sum()) / int(drawn.sum()) if drawn.any() else 0.0
                setting = tuple(labels[d][i] for d, i in enumerate(idx))
                out.append(Clip(panel["title"], s["label"], setting, share, n))
    return out


def worst(fig) -> dict[tuple[str, str], Clip]:
    """For each ``(panel, series)`` of ``fig``, the setting where most of it is cut off."""
    result: dict[tuple[str, str], Clip] = {}
    for clip in measure(fig):
        key = (clip.panel, clip.series)
        if key not in result or clip.share > result[key].share:
            result[key] = clip
    return result


def violations(fig, limit: float = 0.02,
               allowances: Mapping[tuple[str, str], float] | None = None) -> list[Clip]:
    """The curves of ``fig`` of which more than ``limit`` lies outside the axes somewhere.

    ``allowances`` maps ``(panel title, series label)`` to a larger limit for that curve
    (a curve that runs off to an asymptote on purpose). Returns the worst setting of each
    offending curve.
    """
    if not 0 <= limit < 1:
        raise ValueError(f"limit must be a share in [0, 1); got {limit!r}")
    allowances = dict(allowances or {})
    spec_keys = {(p["title"], s["label"]) for p in fig.plot.spec["panels"] for s in p["series"]}
    unknown = sorted(set(allowances) - spec_keys)
    if unknown:
        raise ValueError(f"allowances name curves this figure does not draw: {unknown}; "
                         f"it draws {sorted(spec_keys)}")
    return [c for key, c in worst(fig).items() if c.share > allowances.get(key, limit)]
