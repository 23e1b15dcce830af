"""The new chapters' widgets: at every setting of their controls, each curve equals what
torch computes in ``expected_new_chapters`` (the browser test checks a path through the
settings on the page; this checks every setting, before encoding)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from expected_new_chapters import NEW_CHAPTER_EXPECTED

from losslab.engine import clipping, widgets
from losslab.figures import (
    contrastive,
    dense,
    margins,
    preference,
    probabilistic,
    reference,
    sequences,
)

BUILDERS = [probabilistic.nll_explorer, probabilistic.poisson_explorer,
            probabilistic.gaussian_explorer, margins.pair_losses, margins.multi_margin,
            margins.multilabel, margins.triplet_distance, sequences.ctc_explorer,
            sequences.adaptive_explorer, reference.every_loss,
            contrastive.temperature_explorer, dense.object_size_explorer, preference.dpo_explorer]


def settings(fig: widgets.Figure):
    """Every combination of control indices, with the ``{label: shown value}`` the page shows."""
    controls = fig.plot.spec["controls"]
    for idx in itertools.product(*[range(c["n"]) for c in controls]):
        yield idx, {c["label"]: c["labels"][i] for c, i in zip(controls, idx)}


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_every_setting_draws_the_torch_values(build):
    fig = build()
    title = fig.plot.spec["title"]
    assert title in NEW_CHAPTER_EXPECTED, f"{title!r} has no expected curves"
    expected_fn = NEW_CHAPTER_EXPECTED[title]
    series_dims = {(p["title"], s["label"]): s["dims"]
                   for p in fig.plot.spec["panels"] for s in p["series"]}
    for idx, shown in settings(fig):
        expected = expected_fn(shown)
        assert set(expected) == set(series_dims), f"{title}: series differ at {shown}"
        for key, dims in series_dims.items():
            x_all, y_all = fig.curves[key[0]][key[1]]
            sel = tuple(idx[d] for d in dims)
            want_x, want_y = expected[key]
            np.testing.assert_allclose(x_all[sel], want_x, rtol=1e-9, atol=1e-9,
                                       err_msg=f"{title} / {key} x at {shown}")
            np.testing.assert_allclose(y_all[sel], want_y, rtol=1e-7, atol=1e-7,
                                       err_msg=f"{title} / {key} y at {shown}")


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_the_opening_setting_uses_a_fair_share_of_each_axis(build):
    """At the setting a reader first sees, every panel's curves span at least a fifth of its
    y range and stay mostly inside it, and the embedded data stays modest."""
    fig = build()
    # The index each control starts at, as the plot's c0..c3 traits hold it.
    start = tuple(int(getattr(fig.plot, f"c{i}")) for i in range(len(fig.plot.spec["controls"])))
    assert len(fig.plot.data) < 120_000
    sizes = [c["n"] for c in fig.plot.spec["controls"]]
    for panel in fig.plot.spec["panels"]:
        _, (lo, hi) = clipping.limits_at(panel, start, sizes)   # the axis the reader sees
        ys = np.concatenate([
            fig.curves[panel["title"]][s["label"]][1][tuple(start[d] for d in s["dims"])]
            for s in panel["series"]])
        ys = ys[np.isfinite(ys)]
        inside = ys[(ys >= lo) & (ys <= hi)]
        assert inside.size >= 0.7 * ys.size, f"{panel['title']}: most points off the axis"
        assert np.ptp(inside) >= 0.2 * (hi - lo), (
            f"{panel['title']}: curves span {np.ptp(inside):.3g} of a {hi - lo:.3g} axis")

