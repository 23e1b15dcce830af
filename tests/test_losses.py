"""The loss math the chapters state, checked against torch.nn.functional and autograd."""

import pytest
import torch
import torch.nn.functional as F

from losslab.losses import curves, fitting
from losslab.losses import regression as losses

_GEN = torch.Generator().manual_seed(3)
ERRORS = torch.cat([torch.linspace(-6, 6, 601, dtype=torch.float64),
                    torch.randn(500, dtype=torch.float64, generator=_GEN) * 4])


@pytest.mark.parametrize("name", list(losses.REGRESSION))
@pytest.mark.parametrize("value", [0.1, 0.5, 1.0, 2.0, 3.7])
def test_formula_and_torch_agree_with_autograd_and_analytic_gradient(name, value):
    entry = losses.REGRESSION[name]
    kwargs = {entry.params[0]: value} if entry.params else {}
    target = torch.randn_like(ERRORS)
    inp = target + ERRORS
    torch_value = entry.torch_fn(inp, target, **kwargs)
    assert torch.allclose(entry.formula(inp, target, **kwargs), torch_value, atol=1e-12)
    loss, grad = curves.loss_and_grad(entry.torch_fn, inp, target, **kwargs)
    assert torch.allclose(torch.from_numpy(loss), torch_value, atol=1e-12)
    assert torch.allclose(torch.from_numpy(grad), entry.grad(inp, target, **kwargs), atol=1e-12)


def test_gradients_are_2e_sign_and_clipped():
    e = torch.tensor([-5.0, -0.3, 0.0, 0.4, 2.0], dtype=torch.float64)
    zero = torch.zeros_like(e)
    assert curves.loss_and_grad(losses.mse, e, zero)[1].tolist() == [-10.0, -0.6, 0.0, 0.8, 4.0]
    assert curves.loss_and_grad(losses.l1, e, zero)[1].tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    huber = curves.loss_and_grad(losses.huber, e, zero, delta=1.0)[1]
    assert huber.tolist() == pytest.approx([-1.0, -0.3, 0.0, 0.4, 1.0])


@pytest.mark.parametrize("beta", [0.05, 0.5, 1.0, 2.0, 10.0])
def test_smooth_l1_is_huber_divided_by_beta(beta):
    zero = torch.zeros_like(ERRORS)
    smooth = F.smooth_l1_loss(ERRORS, zero, beta=beta, reduction="none")
    huber = F.huber_loss(ERRORS, zero, delta=beta, reduction="none")
    assert torch.allclose(smooth, huber / beta, atol=1e-12)
    assert torch.allclose(smooth, huber) == (beta == 1.0)


def test_weighted_mse_matches_the_definition_and_plain_mse_for_equal_weights():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(50, generator=gen), torch.randn(50, generator=gen)
    weight = torch.rand(50, generator=gen)
    expected = (weight * (pred - target) ** 2).sum() / weight.sum()
    assert torch.allclose(losses.weighted_mse(pred, target, weight), expected)
    assert torch.allclose(losses.weighted_mse(pred, target, torch.full((50,), 3.0)),
                          F.mse_loss(pred, target))
    with pytest.raises(ValueError, match=r"weight must have shape \(50,\).*got shape \(49,\)"):
        losses.weighted_mse(pred, target, weight[:49])


def test_a_loss_returning_a_scalar_gets_a_clear_error():
    with pytest.raises(ValueError, match="one loss per point"):
        curves.loss_and_grad(lambda i, t: F.mse_loss(i, t), torch.linspace(-1, 1, 5))


def exact_l1_line(x, y):
    """The L1 line through the best pair of points (an L1 fit passes through two of them)."""
    best = None
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            w = (y[j] - y[i]) / (x[j] - x[i])
            b = y[i] - w * x[i]
            cost = (y - (w * x + b)).abs().mean()
            if best is None or cost < best[0]:
                best = (cost, w, b)
    return best


def test_line_fits_reach_the_optimum_of_each_loss():
    x, y = fitting.line_data(n=30, n_outliers=3, outlier_shift=20.0, seed=0)
    mse_fit = fitting.fit_lines(x, y, lambda p, t: F.mse_loss(p, t, reduction="none"))
    closed = torch.linalg.lstsq(torch.stack([x, torch.ones_like(x)], 1), y[:, None]).solution[:, 0]
    assert torch.allclose(mse_fit, closed, atol=1e-6)
    l1_fit = fitting.fit_lines(x, y, lambda p, t: F.l1_loss(p, t, reduction="none"))
    cost, w, b = exact_l1_line(x, y)
    fitted_cost = (y - (l1_fit[0] * x + l1_fit[1])).abs().mean()
    assert fitted_cost <= cost + 1e-3, "the L1 fit must reach the L1 optimum"


def test_robust_fits_land_nearer_the_true_line_than_mse():
    x, y = fitting.line_data(n=30, n_outliers=4, outlier_shift=15.0, seed=0)
    fits = {name: fitting.fit_lines(x, y, fn) for name, fn in {
        "MSE": lambda p, t: F.mse_loss(p, t, reduction="none"),
        "L1": lambda p, t: F.l1_loss(p, t, reduction="none"),
        "Huber": lambda p, t: F.huber_loss(p, t, reduction="none"),
    }.items()}
    dist = {k: abs(v[0].item() - 2.0) for k, v in fits.items()}
    assert dist["L1"] < dist["MSE"] / 4 and dist["Huber"] < dist["MSE"] / 4, dist


def test_line_data_rejects_more_outliers_than_points():
    with pytest.raises(ValueError, match="n_outliers must be between 0 and n=5; got 6"):
        fitting.line_data(n=5, n_outliers=6)
