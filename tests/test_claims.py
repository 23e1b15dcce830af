"""The claims helper fails when a symptom disappears, and the chapters' claims hold."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from losslab.losses import choosing, claims, classification


def test_raises_fails_when_nothing_is_raised_or_the_message_differs():
    with pytest.raises(claims.ClaimFailed, match="nothing was raised"):
        claims.raises(RuntimeError, "Long", F.mse_loss, torch.ones(2),
                      torch.ones(2, dtype=torch.long))
    with pytest.raises(claims.ClaimFailed, match="does not match"):
        claims.raises(RuntimeError, "no such text", F.binary_cross_entropy,
                      torch.tensor([0.5]), torch.tensor([1]))
    err = claims.raises(RuntimeError, "Found dtype Long", F.binary_cross_entropy,
                        torch.tensor([0.5]), torch.tensor([1]))
    assert isinstance(err, RuntimeError)


def test_value_claims_fail_when_the_value_is_right():
    with pytest.raises(claims.ClaimFailed):
        claims.is_nan(torch.tensor(1.0))
    with pytest.raises(claims.ClaimFailed):
        claims.differs(1.0, 1.0)
    with pytest.raises(claims.ClaimFailed):
        claims.close(1.0, 2.0)
    with pytest.raises(claims.ClaimFailed):
        claims.warns(UserWarning, ".", F.mse_loss, torch.ones(3), torch.ones(3))
    with pytest.raises(claims.ClaimFailed):
        claims.succeeds(F.binary_cross_entropy, torch.tensor([2.0]), torch.tensor([1.0]))


def test_silent_fails_on_a_warning_or_an_error_and_passes_a_quiet_call():
    with pytest.raises(claims.ClaimFailed, match="expected no warning"):
        claims.silent(F.mse_loss, torch.ones(3, 1), torch.ones(3))
    with pytest.raises(claims.ClaimFailed, match="expected the call to succeed"):
        claims.silent(F.binary_cross_entropy, torch.tensor([2.0]), torch.tensor([1.0]))
    loss = claims.silent(F.cross_entropy, torch.zeros(1, 3), torch.tensor([[1.0, 1.0, 0.0]]))
    assert math.isclose(loss.item(), 2 * math.log(3), rel_tol=1e-6)


def test_a_gallery_mistake_whose_symptom_vanishes_fails(monkeypatch):
    # if CrossEntropyLoss started accepting float class indices, the gallery must fail
    real = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda z, t, **kw: real(z, t.long(), **kw))
    mistake = next(m for m in choosing.MISTAKES if m.name.startswith("float class indices"))
    with pytest.raises(claims.ClaimFailed):
        mistake.run()


def test_regression_losses_promote_integer_and_float64_targets():
    for fn in (F.mse_loss, F.l1_loss, F.huber_loss, F.smooth_l1_loss):
        assert fn(torch.tensor([1.0, 2.0]), torch.tensor([1, 2])).item() == 0.0
    assert F.mse_loss(torch.ones(2), torch.ones(2, dtype=torch.float64)).dtype == torch.float64


def test_l1_gradient_is_zero_at_zero_error():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    F.l1_loss(x, torch.tensor([1.0, 3.0]), reduction="sum").backward()
    assert x.grad.tolist() == [0.0, -1.0]


def test_bceloss_gradient_in_p_is_about_1e12_and_zero_through_a_saturated_sigmoid():
    p = torch.tensor([1.0], requires_grad=True)
    (g,) = torch.autograd.grad(F.binary_cross_entropy(p, torch.zeros(1)), p)
    assert math.isclose(g.item(), 1e12, rel_tol=1e-3)
    z = torch.tensor([50.0], requires_grad=True)
    (gz,) = torch.autograd.grad(F.binary_cross_entropy(torch.sigmoid(z), torch.zeros(1)), z)
    assert gz.item() == 0.0


def test_sigmoid_rounds_to_zero_where_exp_of_minus_z_overflows():
    edge = math.log(torch.finfo(torch.float32).max)
    assert 88.7 < edge < 88.8
    assert torch.sigmoid(torch.tensor(-edge - 0.01)).item() == 0.0
    assert torch.sigmoid(torch.tensor(-edge + 0.5)).item() > 0.0


def test_bce_with_logits_accepts_float64_targets_and_any_range():
    z = torch.tensor([1.5, -0.5])
    F.binary_cross_entropy_with_logits(z, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert F.binary_cross_entropy_with_logits(torch.tensor([10.0]), torch.tensor([1.5])) < 0
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([1.5]))


def test_cuda_autocast_refuses_bceloss_and_allows_bce_with_logits():
    with pytest.raises(RuntimeError, match="unsafe to autocast"):
        classification.call_cuda_autocast_kernel(
            "binary_cross_entropy", torch.tensor([0.5]), torch.tensor([1.0]), None, 1)
    classification.call_cuda_autocast_kernel(
        "binary_cross_entropy_with_logits", torch.tensor([0.5]), torch.tensor([1.0]), None, None, 1)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("soft", [False, True])
def test_weighted_cross_entropy_formula_matches_pytorch(soft, smoothing):
    logits = torch.randn(9, 4, dtype=torch.float64)
    target = torch.randint(0, 4, (9,))
    if soft:
        target = torch.softmax(torch.randn(9, 4, dtype=torch.float64), dim=1)
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(
        classification.weighted_cross_entropy_formula(logits, target, weight, smoothing),
        F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing))


def test_accumulated_token_mean_equals_the_full_batch_mean_in_value_and_gradient():
    logits = torch.randn(4, 6, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 6, (4, 5))
    target[0, 1:] = -100
    target[3, 2:] = -100
    full = F.cross_entropy(logits, target)
    (g_full,) = torch.autograd.grad(full, logits)
    acc = classification.accumulated_token_mean([logits[:2], logits[2:]], [target[:2], target[2:]])
    (g_acc,) = torch.autograd.grad(acc, logits)
    torch.testing.assert_close(acc, full)
    torch.testing.assert_close(g_acc, g_full)


def test_cross_entropy_over_zero_tokens_is_nan_with_zero_gradient():
    z = torch.randn(2, 3, 4, requires_grad=True)
    loss = F.cross_entropy(z, torch.full((2, 4), -100))
    (g,) = torch.autograd.grad(loss, z)
    assert torch.isnan(loss) and g.abs().max() == 0


def test_focal_self_check_numbers():
    # loss 25 times smaller at p_t = 0.8; gradient about 9 (at 0.8) and 35 (at 0.9) times
    from losslab.losses import beyond
    for p_t, loss_ratio, grad_ratio in ((0.8, 25.0, 9.0), (0.9, 100.0, 34.5)):
        z = beyond.logit_of(torch.tensor([p_t], dtype=torch.float64), True).requires_grad_(True)
        one = torch.ones(1, dtype=torch.float64)
        ce = F.binary_cross_entropy_with_logits(z, one)
        focal = beyond.sigmoid_focal_loss(z, one, alpha=None, gamma=2.0)
        (g_ce,) = torch.autograd.grad(ce, z)
        (g_focal,) = torch.autograd.grad(focal, z)
        assert math.isclose(ce.item() / focal.item(), loss_ratio, rel_tol=1e-9)
        assert abs((g_ce / g_focal).item() - grad_ratio) < 0.1
        # the closed form the self-check quotes
        closed = (1 - p_t) ** 2 * (2 * p_t * math.log(p_t) - (1 - p_t)) / (-(1 - p_t))
        assert math.isclose((g_focal / g_ce).item(), closed, rel_tol=1e-9)


def test_adam_ignores_the_reduction_and_sgd_does_not():
    x = torch.randn(64, dtype=torch.float64)
    y = 2 * x
    out = {}
    for opt_class, lr in ((torch.optim.Adam, 0.1), (torch.optim.SGD, 0.5)):
        for reduction in ("mean", "sum"):
            w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
            opt = opt_class([w], lr=lr)
            for _ in range(20):
                opt.zero_grad()
                F.mse_loss(w * x, y, reduction=reduction).backward()
                opt.step()
            out[(opt_class.__name__, reduction)] = w.item()
    assert math.isclose(out[("Adam", "mean")], out[("Adam", "sum")], rel_tol=1e-6)
    assert abs(out[("SGD", "sum")]) > 1e6
