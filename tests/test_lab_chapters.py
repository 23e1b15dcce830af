"""The calibration chapter and the training lab: their math against references (torchmetrics,
torch.nn.functional, autograd), their training runs against what the text says, their widgets
at every setting, and the numbers of their self-check answers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from expected_lab_chapters import LAB_EXPECTED
from torchmetrics.functional.classification import (
    binary_calibration_error,
    multiclass_calibration_error,
)

from losslab.figures import calibration as calibration_figures
from losslab.figures import training_lab
from losslab.losses import calibration, choosing, fitting, training

f64 = torch.float64


def random_logits(n: int, c: int, seed: int, scale: float = 2.0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=gen, dtype=f64)
    # labels that agree with the argmax more often than chance, so accuracy varies by bin
    noisy = logits + 1.5 * torch.randn(n, c, generator=gen, dtype=f64)
    return logits, noisy.argmax(dim=1)


# --- ECE against torchmetrics ------------------------------------------------------------------

@pytest.mark.parametrize("n_bins", [1, 5, 10, 15, 30])
@pytest.mark.parametrize("c, scale", [(2, 1.0), (3, 2.0), (10, 4.0)])
def test_multiclass_ece_matches_torchmetrics(n_bins, c, scale):
    logits, target = random_logits(2000, c, seed=n_bins + c, scale=scale)
    probs = F.softmax(logits, dim=1)
    assert (probs.max(dim=1).values < 1).all()  # the one place where the binnings differ
    ours = calibration.multiclass_ece(logits, target, n_bins)
    theirs = multiclass_calibration_error(probs, target, num_classes=c, n_bins=n_bins, norm="l1")
    assert ours.item() == pytest.approx(theirs.item(), abs=2e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_multiclass_ece_at_a_temperature_is_the_ece_of_the_scaled_softmax(temperature):
    logits, target = random_logits(1500, 3, seed=7)
    probs = F.softmax(logits / temperature, dim=1)
    theirs = multiclass_calibration_error(probs, target, num_classes=3, n_bins=15, norm="l1")
    ours = calibration.multiclass_ece(logits, target, 15, temperature)
    assert ours.item() == pytest.approx(theirs.item(), abs=2e-6)


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_binary_ece_matches_torchmetrics(n_bins):
    gen = torch.Generator().manual_seed(n_bins)
    z = 2 * torch.randn(3000, generator=gen, dtype=f64)
    y = (torch.rand(3000, generator=gen, dtype=f64) < torch.sigmoid(0.6 * z)).to(f64)
    theirs = binary_calibration_error(torch.sigmoid(z), y.long(), n_bins=n_bins, norm="l1")
    assert calibration.binary_ece(z, y, n_bins).item() == pytest.approx(theirs.item(), abs=2e-6)


def test_a_confidence_of_exactly_one_goes_in_the_last_bin():
    # torchmetrics gives it a bin of its own; the course's diagram has n_bins bins, so the
    # last one is closed on both sides. With 0.95 and 1.0 in one bin: gap |1 - 0.975|.
    conf = torch.tensor([1.0, 0.95], dtype=f64)
    correct = torch.tensor([1.0, 1.0], dtype=f64)
    bins = calibration.reliability(conf, correct, 10)
    assert bins.share[-1] == 1.0 and bins.confidence[-1] == pytest.approx(0.975)
    assert calibration.ece(conf, correct, 10).item() == pytest.approx(0.025)


def test_reliability_bins_are_the_per_bin_means_and_empty_bins_are_nan():
    conf = torch.tensor([0.05, 0.15, 0.18, 0.55, 0.95], dtype=f64)
    correct = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0], dtype=f64)
    bins = calibration.reliability(conf, correct, 10)
    assert bins.confidence[1].item() == pytest.approx(0.165)
    assert bins.accuracy[1].item() == pytest.approx(0.5)
    assert torch.isnan(bins.confidence[2]) and bins.share[2] == 0
    assert bins.share.sum().item() == pytest.approx(1.0)


def test_ece_refuses_logits_and_a_bad_bin_count_with_a_clear_message():
    with pytest.raises(ValueError, match="confidences must lie in \\[0, 1\\]; got values from"):
        calibration.ece(torch.tensor([0.5, 3.0]), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="n_bins must be a positive integer; got 0"):
        calibration.ece(torch.tensor([0.5]), torch.tensor([1.0]), n_bins=0)
    with pytest.raises(ValueError, match="probs must be \\(N, C\\) and target \\(N,\\)"):
        calibration.top_label(torch.rand(4), torch.zeros(4, dtype=torch.long))


# --- temperature scaling --------------------------------------------------------------------

@pytest.mark.parametrize("t", [0.3, 1.0, 1.7, 4.0])
def test_the_closed_form_temperature_derivative_matches_autograd(t):
    logits, target = random_logits(500, 4, seed=3, scale=3.0)
    temp = torch.tensor(t, dtype=f64, requires_grad=True)
    (auto,) = torch.autograd.grad(calibration.nll(logits, target, temp), temp)
    closed = calibration.nll_temperature_grad(logits, target, t)
    torch.testing.assert_close(closed, auto, rtol=1e-10, atol=1e-12)


def test_the_fitted_temperature_minimises_the_nll():
    logits, target = random_logits(2000, 3, seed=5, scale=6.0)  # overconfident
    t = calibration.fit_temperature(logits, target)
    assert t > 1.0
    assert abs(calibration.nll_temperature_grad(logits, target, t).item()) < 1e-9
    grid = torch.linspace(0.5, 10.0, 2000, dtype=f64)
    nlls = torch.stack([calibration.nll(logits, target, g) for g in grid])
    assert calibration.nll(logits, target, t) <= nlls.min() + 1e-12
    assert abs(t - grid[nlls.argmin()].item()) < 0.01


def test_fit_temperature_returns_the_end_of_the_range_when_the_minimum_lies_outside():
    logits = torch.tensor([[10.0, 0.0], [0.0, 10.0]], dtype=f64)
    target = torch.tensor([0, 1])  # always right: the NLL falls as T falls
    assert calibration.fit_temperature(logits, target, lo=0.5, hi=2.0) == 0.5
    with pytest.raises(ValueError, match="need 0 < lo < hi"):
        calibration.fit_temperature(logits, target, lo=2.0, hi=1.0)


# --- the multi-class focal loss ---------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_focal_with_gamma_zero_is_cross_entropy(reduction):
    logits, target = random_logits(64, 5, seed=1)
    torch.testing.assert_close(calibration.softmax_focal_loss(logits, target, 0.0, reduction),
                               F.cross_entropy(logits, target, reduction=reduction))


@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_softmax_focal_matches_the_formula_in_value_and_gradient(gamma):
    logits, target = random_logits(64, 5, seed=2)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = calibration.softmax_focal_loss(a, target, gamma, "sum")
    p_t = F.softmax(b, dim=1)[torch.arange(64), target]
    theirs = (-(1 - p_t) ** gamma * torch.log(p_t)).sum()
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(torch.autograd.grad(ours, a)[0], torch.autograd.grad(theirs, b)[0])


def test_softmax_focal_refuses_a_negative_gamma_and_an_unknown_reduction():
    logits, target = random_logits(4, 3, seed=0)
    with pytest.raises(ValueError, match="gamma must be at least 0; got -1"):
        calibration.softmax_focal_loss(logits, target, -1.0)
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum'; got 'avg'"):
        calibration.softmax_focal_loss(logits, target, 2.0, "avg")


# --- training runs ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, delta", [("MSE", 1.0), ("L1", 1.0), ("Huber", 0.5), ("Huber", 3.0)])
def test_regression_losses_are_the_functional_ones(name, delta):
    p, t = torch.randn(50, dtype=f64), 3 * torch.randn(50, dtype=f64)
    ref = {"MSE": F.mse_loss(p, t, reduction="none"), "L1": F.l1_loss(p, t, reduction="none"),
           "Huber": F.huber_loss(p, t, reduction="none", delta=delta)}[name]
    torch.testing.assert_close(training.regression_loss(name, delta)(p, t), ref)


def test_bad_loss_names_and_settings_say_what_was_expected():
    with pytest.raises(ValueError, match="loss must be 'MSE', 'L1' or 'Huber'; got 'mae'"):
        training.regression_loss("mae")
    with pytest.raises(ValueError, match="Huber's delta must be positive; got 0"):
        training.regression_loss("Huber", 0)
    with pytest.raises(ValueError, match="weighted CE needs a positive pos_weight; got None"):
        training.binary_loss("weighted CE")
    with pytest.raises(ValueError, match="x and y must be 1-D float tensors of one length"):
        training.fit_line_steps(torch.zeros(3), torch.zeros(4), training.regression_loss("MSE"))


def test_the_mse_line_converges_to_least_squares():
    x, y = fitting.line_data(n=30, n_outliers=4, outlier_shift=15.0, seed=0)
    run = training.fit_line_steps(x, y, training.regression_loss("MSE"), steps=600, lr=0.02)
    torch.testing.assert_close(run.params[-1], fitting.least_squares(x[None], y[None])[0],
                               rtol=1e-6, atol=1e-6)
    assert torch.equal(run.params[0], torch.zeros(2, dtype=f64))
    assert run.loss.shape == (601,)


def test_huber_and_l1_lines_end_closer_to_the_true_line_than_mse():
    x, _, mse = training.line_lab("MSE")
    gaps = {name: training.line_distance(run.params[-1], 2.0, 1.0, x).item()
            for name, run in (("MSE", mse), ("L1", training.line_lab("L1")[2]),
                              ("Huber", training.line_lab("Huber", 1.0)[2]))}
    assert gaps["Huber"] < gaps["MSE"] / 4 and gaps["L1"] < gaps["MSE"] / 4


def test_training_keeps_the_data_dtype_and_restores_the_thread_count():
    before = torch.get_num_threads()
    x, y = training.two_blobs(20, 10, seed=0, dtype=torch.float32)
    run = training.train(x, y, training.binary_loss("CE"), hidden=4, out_features=1, steps=5,
                         lr=0.1, seed=0, record_every=2, evaluate={"x": x})
    assert run.steps == [0, 2, 4, 5]
    assert run.outputs["x"].dtype == torch.float32 and run.outputs["x"].shape == (4, 30)
    assert all(p.dtype == torch.float32 for p in run.params[-1])
    assert torch.get_num_threads() == before


def test_flip_labels_flips_about_the_rate_and_never_to_the_same_class():
    y = torch.randint(0, 3, (20000,), generator=torch.Generator().manual_seed(0))
    flipped = training.flip_labels(y, 0.2, 3, seed=1)
    changed = (flipped != y).double().mean().item()
    assert changed == pytest.approx(0.2, abs=0.01)
    assert set(flipped.tolist()) == {0, 1, 2}


def test_recall_per_class_counts_each_class_on_its_own():
    y = torch.tensor([0, 0, 0, 1, 1])
    pred = torch.tensor([0, 1, 0, 1, 0])
    torch.testing.assert_close(training.recall_per_class(pred, y, 2),
                               torch.tensor([2 / 3, 0.5], dtype=f64))
    with pytest.raises(ValueError, match="class 2 has no examples"):
        training.recall_per_class(pred, y, 3)


@pytest.mark.parametrize("w, b", [((1.0, 1.0), 0.0), ((0.0, 2.0), -1.0), ((3.0, 0.0), 6.0),
                                  ((1.0, -0.3), 2.0)])
def test_the_boundary_segment_lies_on_the_line_and_on_the_edge_of_the_box(w, b):
    box = (-4.5, 4.5, -3.5, 4.0)
    seg = training.boundary_segment(torch.tensor(w, dtype=f64), torch.tensor(b, dtype=f64), box)
    for px, py in seg.tolist():
        assert w[0] * px + w[1] * py + b == pytest.approx(0.0, abs=1e-9)
        on_edge = (min(abs(px - box[0]), abs(px - box[1]), abs(py - box[2]), abs(py - box[3]))
                   < 1e-9)
        assert on_edge and box[0] - 1e-9 <= px <= box[1] + 1e-9


def test_a_boundary_that_misses_the_box_is_not_drawn():
    seg = training.boundary_segment(torch.tensor([1.0, 0.0]), torch.tensor(-10.0),
                                    (-4.5, 4.5, -3.5, 4.0))
    assert torch.isnan(seg).all()


def test_weighted_ce_raises_the_rare_recall_and_focal_alone_does_not():
    _, _, _, yv = training.imbalance_data()

    def rare_recall(name, gamma=2.0):
        z = training.imbalance_lab(name, gamma).outputs["held_out"][-1]
        return training.recall_per_class((z > 0).long(), yv, 2)[1].item()

    ce = rare_recall("CE")
    assert rare_recall("weighted CE") > ce + 0.25
    assert abs(rare_recall("focal", 5.0) - ce) < 0.12


def test_label_smoothing_lowers_the_held_out_ece_on_the_noisy_set():
    _, _, _, yv = training.noisy_data()
    ece = {eps: calibration.multiclass_ece(training.noisy_lab(eps).outputs["held_out"][-1], yv)
           for eps in (0.0, 0.2)}
    assert ece[0.2] < ece[0.0] - 0.02


# --- widgets at every setting ------------------------------------------------------------------

BUILDERS = [calibration_figures.temperature_explorer, training_lab.line_fits,
            training_lab.imbalanced_classifier, training_lab.noisy_labels]


def settings(fig):
    controls = fig.plot.spec["controls"]
    for idx in itertools.product(*[range(c["n"]) for c in controls]):
        yield idx, {c["label"]: c["labels"][i] for c, i in zip(controls, idx)}


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_every_setting_draws_what_an_independent_training_run_gives(build):
    fig = build()
    title = fig.plot.spec["title"]
    expected_fn = LAB_EXPECTED[title]
    series_dims = {(p["title"], s["label"]): s["dims"]
                   for p in fig.plot.spec["panels"] for s in p["series"]}
    for idx, shown in settings(fig):
        expected = expected_fn(shown)
        assert set(expected) == set(series_dims), f"{title}: series differ at {shown}"
        for key, dims in series_dims.items():
            x_all, y_all = fig.curves[key[0]][key[1]]
            sel = tuple(idx[d] for d in dims)
            want_x, want_y = expected[key]
            np.testing.assert_allclose(x_all[sel], want_x, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{title} / {key} x at {shown}")
            np.testing.assert_allclose(y_all[sel], want_y, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{title} / {key} y at {shown}")


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_the_opening_setting_keeps_every_curve_in_view_and_the_data_small(build):
    fig = build()
    start = tuple(int(getattr(fig.plot, f"c{i}")) for i in range(len(fig.plot.spec["controls"])))
    assert len(fig.plot.data) < 120_000
    for panel in fig.plot.spec["panels"]:
        lo, hi = panel["ylim"]
        xlo, xhi = panel["xlim"]
        xs, ys = [], []
        for s in panel["series"]:
            x, y = fig.curves[panel["title"]][s["label"]]
            sel = tuple(start[d] for d in s["dims"])
            xs.append(x[sel])
            ys.append(y[sel])
        xs, ys = np.concatenate(xs), np.concatenate(ys)
        ok = np.isfinite(xs) & np.isfinite(ys)
        xs, ys = xs[ok], ys[ok]
        inside = (ys >= lo) & (ys <= hi) & (xs >= xlo) & (xs <= xhi)
        assert inside.all(), f"{panel['title']}: points outside the axes at the opening setting"
        assert np.ptp(ys) >= 0.2 * (hi - lo), f"{panel['title']}: curves squeezed"


def test_every_boundary_of_every_step_lies_inside_the_box():
    fig = training_lab.imbalanced_classifier()
    x0, x1, y0, y1 = training_lab.BOX
    for label in ("boundary, chosen loss", "boundary, plain cross-entropy"):
        xs, ys = fig.curves["training data and the decision boundary"][label]
        ok = np.isfinite(xs)
        assert ok.mean() > 0.9
        assert (xs[ok] >= x0 - 1e-9).all() and (xs[ok] <= x1 + 1e-9).all()
        assert (ys[ok] >= y0 - 1e-9).all() and (ys[ok] <= y1 + 1e-9).all()


# --- self-check answers -------------------------------------------------------------------------

def test_calibration_1_a_bin_adds_share_times_gap():
    # 25 of 125 examples at confidence 0.90, 18 of them right (72 %); the rest at 0.55
    conf = torch.cat([torch.full((25,), 0.9, dtype=f64), torch.full((100,), 0.55, dtype=f64)])
    correct = torch.cat([(torch.arange(25) < 18).to(f64), (torch.arange(100) < 55).to(f64)])
    bins = calibration.reliability(conf, correct, 10)
    contribution = bins.share[9] * (bins.accuracy[9] - bins.confidence[9]).abs()
    assert contribution.item() == pytest.approx(0.036)
    assert calibration.ece(conf, correct, 10).item() == pytest.approx(0.036)


def test_calibration_2_temperature_keeps_accuracy_and_lowers_confidence_towards_a_third():
    logits, target = random_logits(1000, 3, seed=11, scale=3.0)
    for t in (2.0, 1000.0):
        scaled = logits / t
        assert torch.equal(scaled.argmax(1), logits.argmax(1))
        conf = F.softmax(scaled, 1).max(1).values
        assert (conf <= F.softmax(logits, 1).max(1).values).all() and (conf >= 1 / 3).all()
    flat = F.softmax(logits / 1000.0, 1).max(1).values.mean().item()
    assert flat == pytest.approx(1 / 3, abs=0.01)


def test_calibration_3_the_derivative_is_negative_at_one_for_an_overconfident_model():
    m = calibration_figures.trained()["cross-entropy"]
    assert calibration.nll_temperature_grad(m["val"], m["y_val"], 1.0) < 0
    assert m["fitted"] > 1


def test_calibration_4_pos_weight_9_puts_the_optimum_at_one_half_where_q_is_a_tenth():
    z = torch.tensor(-1.0, dtype=f64, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=200, line_search_fn="strong_wolfe")
    q = torch.tensor([1.0] * 1 + [0.0] * 9, dtype=f64)  # one positive in ten
    weight = torch.tensor(9.0, dtype=f64)

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z.expand(10), q, pos_weight=weight)
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.sigmoid(z).item() == pytest.approx(0.5, abs=1e-6)


def test_training_lab_1_the_mse_slope_ends_above_2():
    assert training.line_lab("MSE")[2].params[-1, 0].item() > 3.5


def test_training_lab_2_the_l1_gradient_in_b_is_minus_one_below_every_point():
    x, y, _ = training.line_lab("L1")
    b = torch.tensor(-100.0, dtype=f64, requires_grad=True)
    (g,) = torch.autograd.grad(F.l1_loss(0 * x + b, y), b)
    assert g.item() == pytest.approx(-1.0, abs=1e-12)


def test_training_lab_3_pos_weight_moves_recall_from_the_common_to_the_rare_class():
    _, _, _, yv = training.imbalance_data()
    rec = {name: training.recall_per_class(
        (training.imbalance_lab(name).outputs["held_out"][-1] > 0).long(), yv, 2)
        for name in ("CE", "weighted CE")}
    assert rec["weighted CE"][1] > rec["CE"][1] and rec["weighted CE"][0] < rec["CE"][0]


def test_training_lab_4_smoothed_two_class_loss_cannot_fall_below_the_targets_entropy():
    target = torch.tensor([0])
    best = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert best == pytest.approx(0.325, abs=5e-4)
    at_target = torch.log(torch.tensor([[0.9, 0.1]], dtype=f64))
    assert F.cross_entropy(at_target, target, label_smoothing=0.2).item() == pytest.approx(best)
    for gap in (0.0, 1.0, 5.0, 30.0):
        z = torch.tensor([[gap, 0.0]], dtype=f64)
        assert F.cross_entropy(z, target, label_smoothing=0.2).item() >= best - 1e-12


def test_the_decision_guide_routes_calibrated_probabilities_to_plain_cross_entropy():
    choice = choosing.choose_loss("calibrated probabilities")
    assert type(choice.loss) is torch.nn.CrossEntropyLoss
    assert choice.loss.weight is None and choice.loss.label_smoothing == 0.0
    assert "temperature" in choosing.GUIDE["calibrated probabilities"].loss
