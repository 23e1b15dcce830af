"""Live figures: one anywidget per figure, its controls drawn as native form elements.

Curves are computed in Python when a figure is made, for every combination of the
control values, and shipped to the browser compactly (see ``losslab.engine.encoding``).
Each control is a synced trait of the figure (``c0``..``c3``, the index of its value),
drawn by the front end (``static/lossplot.js``) as a native range input, select or
checkbox, so moving one redraws the plot with no kernel behind it, in JupyterLab and on
the static site alike; with a kernel, ``fig.controls`` reads and sets them from Python.
The key values the text alternative reads (lowest, highest, marked points) are taken
from the float64 curves and shipped exactly (``summary``), beside the 16-bit drawing codes.
The figure's output also carries a matplotlib PNG of its first state for viewers that
show no widgets (a notebook on GitHub or nbviewer, the site's downloaded ``.ipynb``) and
for the page's preview image.
"""

from __future__ import annotations

import base64
import functools
import io
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anywidget
import numpy as np
import torch
import traitlets

from ..losses import curves
from . import encoding, plots

STATIC = Path(__file__).parent / "static"
MAX_CONTROLS = 4
# Keeps one figure's embedded data within reason on a page (about 1.3 MB of base64).
MAX_CODES = 500_000


# --- description of a figure ----------------------------------------------------------------

@dataclass
class Control:
    """One control: a named grid of values the reader moves through."""

    name: str
    values: list
    label: str
    kind: str = "slider"  # "slider", "dropdown" or "toggle"
    labels: list[str] = field(default_factory=list)
    index: int = 0

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"control {self.name!r} needs at least one value; got none")
        if self.kind not in {"slider", "dropdown", "toggle"}:
            raise ValueError(
                f"control kind must be 'slider', 'dropdown' or 'toggle'; got {self.kind!r}"
            )
        if not self.labels:
            self.labels = [_fmt(v) for v in self.values]
        if len(self.labels) != len(self.values):
            raise ValueError(
                f"control {self.name!r} has {len(self.values)} values but "
                f"{len(self.labels)} labels"
            )
        if not 0 <= self.index < len(self.values):
            raise ValueError(
                f"control {self.name!r} starts at index {self.index}, outside "
                f"0..{len(self.values) - 1}"
            )


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "on" if v else "off"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def slider(name: str, values: Sequence, label: str | None = None, value=None,
           labels: Sequence[str] | None = None) -> Control:
    """A slider over ``values`` (kept in the given order), starting at ``value``."""
    values = list(values)
    index = _index_of(values, value) if value is not None else 0
    return Control(name, values, label or name, "slider", list(labels or []), index)


def dropdown(name: str, options: Mapping[str, object] | Sequence, label: str | None = None,
             value=None) -> Control:
    """A dropdown; ``options`` maps shown labels to values, or lists values."""
    if isinstance(options, Mapping):
        labels, values = list(options), list(options.values())
    else:
        values = list(options)
        labels = [_fmt(v) for v in values]
    index = _index_of(values, value) if value is not None else 0
    return Control(name, values, label or name, "dropdown", labels, index)


def toggle(name: str, label: str | None = None, value: bool = False) -> Control:
    """A checkbox switching between ``False`` and ``True``."""
    return Control(name, [False, True], label or name, "toggle", ["off", "on"], int(bool(value)))


def _index_of(values: list, value) -> int:
    for i, v in enumerate(values):
        if v == value or (isinstance(v, float) and np.isclose(v, value)):
            return i
    raise ValueError(f"start value {value!r} is not one of the control's values {values!r}")


@dataclass
class Series:
    """One drawn series.

    ``y`` (and ``x`` when it is callable) is called with the values of the controls named
    in ``depends`` as keyword arguments and returns a 1-D array; a fixed ``x`` is an array.
    """

    label: str
    x: np.ndarray | Callable[..., np.ndarray]
    y: Callable[..., np.ndarray] | np.ndarray
    depends: tuple[str, ...] = ()
    kind: str = "line"  # "line" or "points"
    style: str = "solid"  # "solid", "dashed" or "dotted"
    color: int = 0


@dataclass
class Panel:
    """One plot area: a title, axis labels, its series, and optional fixed limits."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    #: What the text alternative calls x ("error e"); by default the x label up to its
    #: first comma or " = ".
    xname: str = ""


# Where no limits are given, an axis is fixed across settings (so settings compare at a
# glance) unless that would squeeze the curves of some setting into less than this share
# of it; then the axis follows the setting.
FAIR_SHARE = 0.4


# --- the widget -----------------------------------------------------------------------------

class LossPlot(anywidget.AnyWidget):
    """A figure's front end. ``spec`` describes controls, panels, series and data blocks;
    ``data`` holds the drawing codes, ``summary`` the exact key values the text
    alternative reads (float64, base64); ``c0``..``c3`` hold the index of each control's
    value."""

    _esm = STATIC / "lossplot.js"
    _css = STATIC / "lossplot.css"
    spec = traitlets.Dict().tag(sync=True)
    data = traitlets.Unicode("").tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)
    c0 = traitlets.Int(0).tag(sync=True)
    c1 = traitlets.Int(0).tag(sync=True)
    c2 = traitlets.Int(0).tag(sync=True)
    c3 = traitlets.Int(0).tag(sync=True)


class FigureControl:
    """One control of a live figure, read and set from Python (the trait ``c<i>``)."""

    def __init__(self, figure: Figure, i: int, control: Control):
        self._figure, self._i, self._control = figure, i, control

    name = property(lambda self: self._control.name)
    label = property(lambda self: self._control.label, doc="The label shown beside it.")
    description = label
    kind = property(lambda self: self._control.kind)
    values = property(lambda self: list(self._control.values))
    options = property(lambda self: list(self._control.labels), doc="The shown values.")

    @property
    def index(self) -> int:
        """The position of the current value in :attr:`values`."""
        return int(getattr(self._figure, f"c{self._i}"))

    @index.setter
    def index(self, i: int) -> None:
        n = len(self._control.values)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise ValueError(f"control {self.name!r} takes an index 0..{n - 1}; got {i!r}")
        setattr(self._figure, f"c{self._i}", int(i))

    @property
    def value(self):
        """The current value (one of :attr:`values`); setting it moves the control."""
        return self._control.values[self.index]

    @value.setter
    def value(self, v) -> None:
        self.index = _index_of(self._control.values, v)

    @property
    def shown(self) -> str:
        """The value as the control shows it."""
        return self._control.labels[self.index]

    def observe(self, handler: Callable, **kwargs) -> None:
        """Call ``handler(change)`` when this control moves (traitlets' ``observe``)."""
        self._figure.observe(handler, names=f"c{self._i}", **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.label!r} = {self.shown}>"


class Figure(LossPlot):
    """A live figure: its controls and panels in one widget; its output also carries a
    PNG snapshot."""

    def __init__(self, controls: list[Control], snapshot: Callable[[], bytes], curves: dict,
                 **kwargs):
        super().__init__(**kwargs)
        self._snapshot = snapshot
        #: The controls, read and set from Python: ``fig.controls[0].value = 2.0``.
        self.controls = [FigureControl(self, i, c) for i, c in enumerate(controls)]
        #: The computed values: ``curves[panel_title][series_label]`` is ``(x, y)`` with one
        #: leading axis per control the series depends on.
        self.curves = curves

    @property
    def plot(self) -> Figure:
        """The figure itself (its ``spec``, ``data``, ``summary`` and ``c0``..``c3``)."""
        return self

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        bundle = dict(bundle)
        bundle["image/png"] = base64.b64encode(self._snapshot()).decode("ascii")
        return bundle


def figure(panels: Sequence[Panel], controls: Sequence[Control] = (), title: str = "") -> Figure:
    """Compute every series over the control grid and return a live :class:`Figure`."""
    controls = list(controls)
    if len(controls) > MAX_CONTROLS:
        raise ValueError(
            f"a figure takes at most {MAX_CONTROLS} controls; got {len(controls)}"
        )
    names = [c.name for c in controls]
    if len(set(names)) != len(names):
        raise ValueError(f"control names must be unique; got {names}")
    by_name = {c.name: i for i, c in enumerate(controls)}

    blocks: list[dict] = []
    arrays: list[np.ndarray] = []
    offset = 0
    summaries: list[np.ndarray] = []
    summary_offset = 0

    def add_summary(x_all: np.ndarray, y_all: np.ndarray, kind: str) -> dict:
        nonlocal summary_offset
        table, points = key_values(x_all, y_all, kind)
        ref = {"offset": summary_offset, "width": table.shape[1], "points": points}
        summaries.append(table.ravel())
        summary_offset += table.size
        return ref

    def add_block(values: np.ndarray) -> int:
        nonlocal offset
        enc = encoding.encode(values)
        blocks.append({"offset": offset, "lo": enc.lo, "hi": enc.hi})
        arrays.append(enc.codes)
        offset += enc.codes.size
        return len(blocks) - 1

    spec_panels = []
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for panel in panels:
        spec_series = []
        curves[panel.title] = {}
        finite_x, finite_y = [], []
        grids_of: list[tuple[list[int], np.ndarray, np.ndarray]] = []
        for s in panel.series:
            unknown = [d for d in s.depends if d not in by_name]
            if unknown:
                raise ValueError(
                    f"series {s.label!r} depends on {unknown}, which are not controls "
                    f"of this figure (controls: {names})"
                )
            dims = [by_name[d] for d in s.depends]
            grids = [controls[d].values for d in dims]
            xs, ys = [], []
            for combo in itertools.product(*grids) if grids else [()]:
                params = dict(zip(s.depends, combo))
                y = np.asarray(s.y(**params) if callable(s.y) else s.y, dtype=np.float64)
                x = np.asarray(s.x(**params) if callable(s.x) else s.x, dtype=np.float64)
                if y.ndim != 1 or x.shape != y.shape:
                    raise ValueError(
                        f"series {s.label!r} must give 1-D x and y of equal length; "
                        f"got x {x.shape} and y {y.shape} for {params}"
                    )
                xs.append(x)
                ys.append(y)
            n = ys[0].size
            if any(y.size != n for y in ys):
                raise ValueError(f"series {s.label!r} changes length across control values")
            shape = tuple(len(g) for g in grids)
            y_all = np.stack(ys).reshape(*shape, n)
            x_all = np.stack(xs).reshape(*shape, n)
            curves[panel.title][s.label] = (x_all, y_all)
            x_ref = _x_ref(s, x_all, add_block)
            y_ref = {"block": add_block(y_all), "perFrame": True}
            spec_series.append({
                "label": s.label, "kind": s.kind, "style": s.style, "color": s.color,
                "dims": dims, "n": n, "x": x_ref, "y": y_ref,
                "summary": add_summary(x_all, y_all, s.kind),
            })
            finite_x.append(x_all[np.isfinite(x_all)])
            finite_y.append(y_all[np.isfinite(y_all)])
            grids_of.append((dims, x_all, y_all))
        xlim = panel.xlim or _limits(finite_x, pad=0.0)
        ylim = panel.ylim or _limits(finite_y, pad=0.05)
        xs_all = np.concatenate([c.ravel() for c in finite_x]) if finite_x else np.zeros(0)
        spec_panels.append({
            "title": panel.title, "xlabel": panel.xlabel, "ylabel": panel.ylabel,
            "xname": panel.xname or _short_name(panel.xlabel),
            "xlim": list(xlim), "ylim": list(ylim),
            "categorical": _is_categorical(xs_all, xlim),
            "follow": _follow(grids_of, [len(c.values) for c in controls],
                              None if panel.xlim else xlim, None if panel.ylim else ylim),
            "series": spec_series,
        })
    if offset > MAX_CODES:
        raise ValueError(
            f"this figure would embed {offset} values (limit {MAX_CODES}); use coarser "
            "control grids or fewer points per curve"
        )
    spec = {
        "title": title,
        "controls": [
            {"name": c.name, "label": c.label, "n": len(c.values), "labels": c.labels,
             "kind": c.kind}
            for c in controls
        ],
        "panels": spec_panels,
        "blocks": blocks,
    }
    summary = (np.concatenate(summaries) if summaries else np.zeros(0)).astype("<f8")
    start = {f"c{i}": c.index for i, c in enumerate(controls)}
    fig: Figure

    def snapshot() -> bytes:
        idx = [c.index for c in fig.controls]
        return _snapshot_png(spec_panels, panels, curves, idx, by_name,
                             [len(c.values) for c in controls])

    fig = Figure(controls, snapshot, curves, spec=spec, data=encoding.pack(arrays),
                 summary=base64.b64encode(summary.tobytes()).decode("ascii"), **start)
    return fig


#: A "points" series of at most this many points is described point by point.
POINTS_SAID = 6


def key_values(x_all: np.ndarray, y_all: np.ndarray, kind: str) -> tuple[np.ndarray, int]:
    """What the text alternative says of one series at each setting, from float64 values.

    ``x_all`` and ``y_all`` have one leading axis per control and the points last.
    Returns ``(table, points)``: one row per setting (C order). A "points" series of at
    most :data:`POINTS_SAID` points is said point by point (``points`` is their count and a
    row holds ``x0, y0, x1, y1, ...``, NaN where not finite); any other series by its
    lowest and highest value (``points`` is 0 and a row holds ``y_low, x_at_low, y_high,
    x_at_high, count_not_finite``; NaN in ``y_low`` when no value is finite).
    """
    n = y_all.shape[-1]
    xs = np.broadcast_to(x_all, y_all.shape).reshape(-1, n).astype(np.float64)
    ys = y_all.reshape(-1, n).astype(np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if kind == "points" and n <= POINTS_SAID:
        table = np.empty((ys.shape[0], 2 * n))
        table[:, 0::2] = np.where(ok, xs, np.nan)
        table[:, 1::2] = np.where(ok, ys, np.nan)
        return table, n
    table = np.full((ys.shape[0], 5), np.nan)
    any_ok = ok.any(axis=1)
    low = np.argmin(np.where(ok, ys, np.inf), axis=1)
    high = np.argmax(np.where(ok, ys, -np.inf), axis=1)
    rows = np.arange(ys.shape[0])
    table[any_ok, 0] = ys[rows, low][any_ok]
    table[any_ok, 1] = xs[rows, low][any_ok]
    table[any_ok, 2] = ys[rows, high][any_ok]
    table[any_ok, 3] = xs[rows, high][any_ok]
    table[:, 4] = n - ok.sum(axis=1)
    return table, 0


def frame_of(dims: Sequence[int], idx: Sequence[int], sizes: Sequence[int]) -> int:
    """The setting's position (C order) among the settings of the controls in ``dims``."""
    f = 0
    for d in dims:
        f = f * sizes[d] + idx[d]
    return f


def limits_at(panel: Mapping, idx: Sequence[int], sizes: Sequence[int]) -> tuple[list, list]:
    """A panel's ``(xlim, ylim)`` in the spec at the setting ``idx`` (fixed or following it)."""
    follow = panel.get("follow")
    f = frame_of(follow["dims"], idx, sizes) if follow else 0
    xlim = follow["x"][f] if follow and follow.get("x") else panel["xlim"]
    ylim = follow["y"][f] if follow and follow.get("y") else panel["ylim"]
    return xlim, ylim


def _x_ref(s: Series, x_all: np.ndarray, add_block) -> dict:
    if not callable(s.x):
        x = x_all.reshape(-1, x_all.shape[-1])[0]
        n = x.size
        if n > 1 and np.allclose(x, np.linspace(x[0], x[-1], n), rtol=0, atol=1e-12 * max(
                1.0, float(np.abs(x).max()))):
            return {"linspace": [float(x[0]), float(x[-1]), n]}
        return {"block": add_block(x), "perFrame": False}
    return {"block": add_block(x_all), "perFrame": True}


def _limits(chunks: list[np.ndarray], pad: float) -> tuple[float, float]:
    vals = np.concatenate([c.ravel() for c in chunks]) if chunks else np.zeros(0)
    if vals.size == 0:
        return (0.0, 1.0)
    lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    return (lo - pad * span, hi + pad * span)


def _short_name(xlabel: str) -> str:
    return xlabel.split(",")[0].split(" = ")[0].strip() or "x"


def _is_categorical(xs: np.ndarray, xlim) -> bool:
    """Whether x takes only a few whole numbers on an axis padded by a half on each side."""
    if xs.size == 0 or not np.allclose(xs, np.round(xs)):
        return False
    lo, hi = xlim
    return bool(len(np.unique(xs)) <= 12 and np.isclose(lo % 1, 0.5) and np.isclose(hi % 1, 0.5))


def _follow(grids_of, sizes: list[int], xlim, ylim) -> dict | None:
    """Per-setting limits for the axes that need them, or None when fixed axes do.

    ``grids_of`` holds each series' control dims and its ``(x, y)`` grids; ``xlim`` and
    ``ylim`` are the fixed limits, or None where the figure gave its own (never followed).
    Returns ``{"dims": [...], "x": [[lo, hi], ...] | None, "y": ...}`` with one pair per
    setting of the controls in ``dims`` (C order), or None.
    """
    dims = sorted({d for g in grids_of for d in g[0]})
    if not dims:
        return None
    out = {"dims": dims, "x": None, "y": None}
    for axis, fixed, pad in (("x", xlim, 0.0), ("y", ylim, 0.05)):
        if fixed is None:
            continue
        per_frame = []
        for combo in itertools.product(*[range(sizes[d]) for d in dims]):
            chunks = []
            for series_dims, x_all, y_all in grids_of:
                values = (x_all if axis == "x" else y_all)[
                    tuple(combo[dims.index(d)] for d in series_dims)]
                chunks.append(values[np.isfinite(values)])
            per_frame.append(_limits(chunks, pad))
        span = fixed[1] - fixed[0]
        if all((hi - lo) >= FAIR_SHARE * span for lo, hi in per_frame):
            continue
        out[axis] = [[float(f"{lo:.6g}"), float(f"{hi:.6g}")] for lo, hi in per_frame]
    return out if out["x"] or out["y"] else None


def _snapshot_png(spec_panels, panels, curves, idx, by_name, sizes) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.0), dpi=80, squeeze=False)
    try:
        for ax, panel, sp in zip(axes[0], panels, spec_panels):
            xlim, ylim = limits_at(sp, idx, sizes)
            drawn = []
            for s in panel.series:
                x_all, y_all = curves[panel.title][s.label]
                sel = tuple(idx[by_name[d]] for d in s.depends)
                drawn.append(plots.Curve(s.label, x_all[sel], y_all[sel], s.kind, s.style, s.color))
            plots.draw_curves(ax, drawn, title=panel.title, xlabel=panel.xlabel,
                              ylabel=panel.ylabel, xlim=tuple(xlim), ylim=tuple(ylim))
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


# --- loss explorers -------------------------------------------------------------------------

def loss_explorer(
    loss_fns: Mapping[str, curves.LossFn],
    controls: Sequence[Control] = (),
    x: torch.Tensor | None = None,
    target: float = 0.0,
    xlabel: str = "error e = input − target",
    loss_ylim: tuple[float, float] | None = None,
    grad_ylim: tuple[float, float] | None = None,
    title: str = "",
) -> Figure:
    """Loss and autograd-gradient curves of elementwise losses, live over ``controls``.

    ``loss_fns`` maps a label to ``fn(input, target, **params) -> Tensor`` returning one
    loss per element (``reduction="none"``); a function receives the controls whose names
    appear in its signature. ``x`` is the 1-D float tensor of errors plotted (input =
    target + x); by default 240 points from -3 to 3 (0 itself left out, where L1 has a
    kink). Bring your own function to see its curve and gradient at once.
    """
    if not loss_fns:
        raise ValueError("loss_explorer needs at least one loss function; got none")
    x = torch.linspace(-3.0, 3.0, 240, dtype=torch.float64) if x is None else x
    if not isinstance(x, torch.Tensor) or x.dim() != 1 or not x.is_floating_point():
        raise ValueError(f"x must be a 1-D float tensor; got {x!r:.80}")
    names = [c.name for c in controls]
    loss_series, grad_series = [], []
    for color, (label, fn) in enumerate(loss_fns.items()):
        accepted = curves.accepted_params(fn)
        depends = tuple(n for n in names if n in accepted or "*" in accepted)
        # Loss and gradient come from one autograd pass; compute it once per setting.
        @functools.cache
        def pair(fn=fn, **params):
            return curves.loss_and_grad(fn, x + target, float(target), **params)

        xs = (x).double().numpy()
        loss_series.append(Series(label, xs, lambda pair=pair, **p: pair(**p)[0], depends,
                                  color=color % 6))
        grad_series.append(Series(label, xs, lambda pair=pair, **p: pair(**p)[1], depends,
                                  color=color % 6))
    panels = [
        Panel("loss", xlabel, "loss", loss_series, ylim=loss_ylim),
        Panel("gradient (autograd)", xlabel, "d loss / d input", grad_series, ylim=grad_ylim),
    ]
    return figure(panels, controls, title=title)
