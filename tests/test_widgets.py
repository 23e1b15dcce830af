"""What the widgets carry to the browser: the curves they show, decoded as the page does."""

import base64
import html
import itertools
import re

import lossplot_js
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losslab.engine import encoding, first_paint, widgets
from losslab.figures import regression
from losslab.losses import regression as losses


def shown_curves(fig: widgets.Figure) -> dict:
    """Decode a figure's state as its JavaScript does: ``{(panel, label): {frame: (x, y)}}``."""
    spec, codes = fig.plot.spec, encoding.unpack(fig.plot.data)
    controls = spec["controls"]
    out = {}
    for panel in spec["panels"]:
        for s in panel["series"]:
            shape = [controls[d]["n"] for d in s["dims"]]
            frames = {}
            for f, combo in enumerate(itertools.product(*[range(n) for n in shape])):
                def column(ref, f=f):
                    if "linspace" in ref:
                        return np.linspace(*ref["linspace"])
                    block = spec["blocks"][ref["block"]]
                    start = block["offset"] + (f * s["n"] if ref["perFrame"] else 0)
                    return encoding.decode(codes[start:start + s["n"]], block["lo"], block["hi"])
                key = tuple(zip([controls[d]["name"] for d in s["dims"]], combo))
                frames[key] = (column(s["x"]), column(s["y"]))
            out[(panel["title"], s["label"])] = frames
    return out


@pytest.fixture(scope="module")
def regression_figure():
    return regression.loss_curves()


def test_regression_curves_match_functional_and_analytic_gradients(regression_figure):
    shown = shown_curves(regression_figure)
    names = {"MSE": "MSE", "L1": "L1", "Huber(δ)": "Huber", "SmoothL1(β)": "SmoothL1"}
    for label, key in names.items():
        entry = losses.REGRESSION[key]
        frames = shown[("loss", label)]
        # One quantisation step of the block, whose range spans every frame of the series.
        step = max(np.ptp(y) for _, y in frames.values()) / encoding.FINITE_MAX * 1.01
        for frame, (x, y) in frames.items():
            kwargs = {entry.params[0]: regression.DELTAS[i] for _, i in frame}
            e = torch.from_numpy(x)
            zero = torch.zeros_like(e)
            want = entry.torch_fn(e, zero, **kwargs).numpy()
            assert np.abs(y - want).max() <= step, (label, frame)
            _, gy = shown[("gradient (autograd)", label)][frame]
            analytic = entry.grad(e, zero, **kwargs).numpy()
            assert np.abs(gy - analytic).max() <= 6.0 / encoding.FINITE_MAX + 1e-9, (label, frame)
        depends = {name for frame in shown[("loss", label)] for name, _ in frame}
        assert depends == set(entry.params), f"{label} depends on {depends}"


def test_smooth_l1_and_huber_coincide_only_where_beta_equals_delta_equals_one(regression_figure):
    shown = shown_curves(regression_figure)
    one = regression.DELTAS.index(1.0)
    huber = shown[("loss", "Huber(δ)")]
    smooth = shown[("loss", "SmoothL1(β)")]
    assert np.allclose(huber[(("delta", one),)][1], smooth[(("beta", one),)][1], atol=1e-3)
    two = regression.DELTAS.index(2.0)
    assert not np.allclose(huber[(("delta", two),)][1], smooth[(("beta", two),)][1], atol=1e-2)


def test_controls_are_traits_of_the_figure_read_and_set_from_python(regression_figure):
    fig = regression_figure
    assert [c.label for c in fig.controls] == ["Huber δ", "SmoothL1 β"]
    assert fig.plot is fig and set(fig.keys) >= {"c0", "c1", "spec", "data", "summary"}
    assert all(fig.trait_metadata(f"c{i}", "sync") for i in range(2))
    one = regression.DELTAS.index(1.0)
    assert fig.controls[0].index == fig.c0 == one and fig.controls[0].value == 1.0
    fig.controls[0].value = 2.0
    assert fig.c0 == regression.DELTAS.index(2.0) and fig.controls[0].shown == "2"
    fig.controls[1].index = 0
    assert fig.c1 == 0 and fig.controls[1].value == regression.DELTAS[0]
    with pytest.raises(ValueError, match=r"takes an index 0\.\.\d+; got 99"):
        fig.controls[0].index = 99
    with pytest.raises(ValueError, match="start value 7.5 is not one of"):
        fig.controls[0].value = 7.5
    # A move on the page arrives as a state update from the front end; Python sees it.
    seen = []
    fig.controls[0].observe(lambda change: seen.append(change["new"]))
    fig.set_state({"c0": one})
    assert fig.controls[0].value == 1.0 and seen == [one]
    fig.controls[1].value = 1.0
    assert (fig.c0, fig.c1) == (one, regression.DELTAS.index(1.0))


def test_output_is_one_widget_view_and_a_png_for_viewers_without_widgets(regression_figure):
    bundle = regression_figure._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == regression_figure.model_id
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_learners_own_loss_gets_its_autograd_gradient():
    def log_cosh(input, target, scale):
        return torch.log(torch.cosh(scale * (input - target)))

    fig = widgets.loss_explorer({"log-cosh": log_cosh},
                                controls=[widgets.slider("scale", [0.5, 1.0, 2.0])])
    shown = shown_curves(fig)
    for frame, (x, gy) in shown[("gradient (autograd)", "log-cosh")].items():
        scale = [0.5, 1.0, 2.0][frame[0][1]]
        assert np.abs(gy - scale * np.tanh(scale * x)).max() < 1e-3


def test_bad_figures_get_clear_errors():
    with pytest.raises(ValueError, match="at most 4 controls; got 5"):
        widgets.figure([], [widgets.slider(f"c{i}", [1, 2]) for i in range(5)])
    series = widgets.Series("s", np.arange(3.0), lambda k: np.arange(3.0), ("k",))
    with pytest.raises(ValueError, match=r"depends on \['k'\], which are not controls"):
        widgets.figure([widgets.Panel("p", "x", "y", [series])])
    with pytest.raises(ValueError, match="start value 7 is not one of"):
        widgets.slider("a", [1, 2, 3], value=7)
    with pytest.raises(ValueError, match="one loss per point"):
        widgets.loss_explorer({"mean": lambda input, target: F.mse_loss(input, target)})


def test_page_weight_of_a_widget_stays_small(regression_figure):
    outlier = regression.outlier_widget()
    for fig in (regression_figure, outlier):
        assert len(fig.plot.data) < 100_000, "embedded curve data should stay compact"


def _scaled_figure(scales):
    x = np.linspace(-1.0, 1.0, 21)
    series = widgets.Series("k·x²", x, lambda k: k * x**2, ("k",))
    return widgets.figure([widgets.Panel("p", "x, the input", "y", [series])],
                          [widgets.slider("k", scales)])


def test_an_axis_follows_the_setting_only_where_a_fixed_one_would_squash_a_curve():
    follows = _scaled_figure([1.0, 10.0, 100.0]).plot.spec["panels"][0]
    assert follows["follow"]["dims"] == [0] and follows["follow"]["x"] is None
    ylims = follows["follow"]["y"]
    assert len(ylims) == 3
    for (lo, hi), k in zip(ylims, [1.0, 10.0, 100.0]):
        assert lo < 0 < k < hi <= 1.06 * k  # k·x² spans 0..k, padded by 5 %
    steady = _scaled_figure([1.0, 1.5, 2.0]).plot.spec["panels"][0]
    assert steady["follow"] is None
    assert steady["ylim"][1] == pytest.approx(2.1)


def test_a_given_limit_is_kept_and_a_class_axis_gets_whole_ticks():
    x = np.arange(3.0)
    panel = widgets.Panel("classes", "class k", "p", [
        widgets.Series("p", x, lambda k: np.eye(3)[k], ("k",), kind="points")],
        xlim=(-0.5, 2.5), ylim=(0.0, 1.0))
    spec = widgets.figure([panel], [widgets.slider("k", [0, 1, 2])]).plot.spec["panels"][0]
    assert spec["follow"] is None and spec["categorical"] is True
    (ticks,) = lossplot_js.calls(("niceTicks", [-0.5, 2.5, 6, spec["categorical"]]))
    assert ticks == [0, 1, 2]
    assert spec["xname"] == "class k"
    assert widgets.figure([widgets.Panel("q", "e, an error", "y", [widgets.Series(
        "y", np.linspace(0, 1, 5), np.linspace(0, 1, 5))])]).plot.spec["panels"][0][
        "categorical"] is False


def test_the_build_time_picture_is_drawn_by_the_live_code(regression_figure):
    fig = regression_figure
    one = regression.DELTAS.index(1.0)
    fig.controls[0].index = fig.controls[1].index = one
    markup = first_paint.figure_html(lossplot_js.state_of(fig), "t")
    shown = shown_curves(fig)
    x, y = fig.curves["loss"]["MSE"]
    lowest = int(np.argmin(y))
    (said_y, said_x) = lossplot_js.calls(("say", [float(y[lowest])]),
                                        ("say", [float(x[lowest])]))
    assert f"MSE: lowest {said_y} at error e = {said_x}" in html.unescape(markup)
    assert markup.count('class="ll-figure"') == 2
    assert markup.count("<path ") == 8  # four losses, each a loss and a gradient curve
    # The controls are there at their values, disabled until the live figure takes over.
    sliders = re.findall(r'<input type="range" id="t-c(\d)" min="0" max="(\d+)" step="1" '
                         r'value="(\d+)" aria-valuetext="([^"]*)"[^>]* disabled=""/>', markup)
    assert [(int(i), int(v), t) for i, _, v, t in sliders] == [(0, one, "1"), (1, one, "1")]
    assert '<label class="ll-control-label" for="t-c0">Huber δ</label>' in markup
    # The drawn curve is the decoded data, scaled to the panel.
    d = re.search(r'<path class="ll-series ll-c0 ll-solid" data-label="MSE" fill="none" '
                  r'd="([^"]+)"', markup).group(1)
    pts = np.array(re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d), dtype=float)
    xd, yd = shown[("loss", "MSE")][()]
    assert len(pts) == len(xd)
    dom = re.search(r'data-xdomain="([^"]+)" data-ydomain="([^"]+)" data-xrange="([^"]+)" '
                    r'data-yrange="([^"]+)"', markup).groups()
    (x0, x1), (y0, y1), (px0, px1), (py0, py1) = (map(float, v.split(",")) for v in dom)
    assert np.abs(px0 + (xd - x0) / (x1 - x0) * (px1 - px0) - pts[:, 0]).max() < 0.006
    assert np.abs(py0 + (yd - y0) / (y1 - y0) * (py1 - py0) - pts[:, 1]).max() < 0.006


def test_numbers_read_aloud_and_tick_labels():
    said = lossplot_js.calls(*[("say", [v]) for v in (-0.5, 12345.6, 123456.7)],
                             ("fmt", [2.5]), ("fmt", [20000.0]), ("fmt", [-1.0]))
    assert said == ["\u22120.5", "12300", "1.23e+5", "2.5", "2e+4", "\u22121"]


def test_bad_state_gets_a_clear_error():
    with pytest.raises(RuntimeError, match="expected a state with spec.panels"):
        first_paint.figure_html({"spec": {"title": "no panels"}}, "t")
