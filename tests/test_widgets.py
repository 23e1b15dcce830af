"""What the widgets carry to the browser: the curves they show, decoded as the page does."""

import base64
import html
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losslab.engine import encoding, svg, widgets
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


def test_controls_are_linked_in_the_browser_and_output_carries_a_png(regression_figure):
    fig = regression_figure
    assert len(fig.controls) == 2
    bundle = fig._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from ipywidgets.widgets.widget import Widget
    from ipywidgets.widgets.widget_link import Link

    links = [w for w in Widget.widgets.values() if isinstance(w, Link)]
    targets = {(link.target[0].model_id, link.target[1]) for link in links
               if link.source[0] in fig.controls}
    assert targets == {(fig.plot.model_id, "c0"), (fig.plot.model_id, "c1")}


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
    assert svg.nice_ticks(-0.5, 2.5, 6, spec["categorical"]) == [0.0, 1.0, 2.0]
    assert spec["xname"] == "class k"
    assert widgets.figure([widgets.Panel("q", "e, an error", "y", [widgets.Series(
        "y", np.linspace(0, 1, 5), np.linspace(0, 1, 5))])]).plot.spec["panels"][0][
        "categorical"] is False


def test_the_build_time_picture_says_what_the_live_plot_says(regression_figure):
    state = {"spec": regression_figure.plot.spec, "data": regression_figure.plot.data,
             **{f"c{i}": getattr(regression_figure.plot, f"c{i}") for i in range(2)}}
    markup = svg.figure_html(state, "t")
    shown = shown_curves(regression_figure)
    one = regression.DELTAS.index(1.0)
    x, y = shown[("loss", "MSE")][()]
    lowest = int(np.argmin(y))
    assert (f"MSE: lowest {svg.say(y[lowest])} at error e = {svg.say(x[lowest])}"
            in html.unescape(markup))
    assert markup.count('class="ll-figure"') == 2
    assert markup.count("<path ") == 8  # four losses, each a loss and a gradient curve
    assert "Huber δ</span> <span class=\"ll-static-value\">1</span>" in markup
    assert state["c0"] == one


def test_numbers_read_aloud():
    assert svg.say(-0.5) == "\u22120.5"
    assert svg.say(12345.6) == "12300" and svg.say(123456.7) == "1.23e+5"
    assert svg.say(float("nan")) == "not a number"
    assert svg.fmt(2.5) == "2.5" and svg.fmt(20000.0) == "2e+4" and svg.fmt(-1.0) == "-1"
