"""Every self-check answer that states a number or a PyTorch behaviour is run here.

One test per answer, named after the chapter and the question's number, so a future
PyTorch that changes the behaviour an answer describes fails a test that says which one.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from losslab.losses import beyond, choosing, classification, scale, sequences

torch.manual_seed(0)


def _grad(loss_fn, x):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(x), x)
    return g


# --- why_losses ----------------------------------------------------------------------------


def test_why_losses_1_a_loss_module_returns_the_mean_of_the_per_element_losses():
    pred, target = torch.randn(6), torch.randn(6)
    per_element = nn.MSELoss(reduction="none")(pred, target)
    assert per_element.shape == (6,)
    torch.testing.assert_close(nn.MSELoss()(pred, target), per_element.mean())


@pytest.mark.parametrize("d", [1, 3])
def test_why_losses_2_sum_multiplies_the_gradient_by_the_number_of_elements(d):
    pred = torch.randn(128, d, dtype=torch.float64)
    target = torch.randn(128, d, dtype=torch.float64)
    g_mean = _grad(lambda p: F.mse_loss(p, target), pred)
    g_sum = _grad(lambda p: F.mse_loss(p, target, reduction="sum"), pred)
    torch.testing.assert_close(g_sum, 128 * d * g_mean)


def _train(reduction, make_opt, steps=20, clip=None):
    torch.manual_seed(1)
    x = torch.randn(128, dtype=torch.float64)
    y = 2 * x + 0.1 * torch.randn(128, dtype=torch.float64)
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = make_opt([w])
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(w * x, y, reduction=reduction).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([w], clip)
        opt.step()
    return w.item()


def test_why_losses_2_sgd_with_lr_over_n_matches_mean_and_adam_like_optimisers_ignore_it():
    sgd_mean = _train("mean", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    sgd_sum = _train("sum", lambda p: torch.optim.SGD(p, lr=0.1 / 128, momentum=0.9))
    assert math.isclose(sgd_mean, sgd_sum, rel_tol=1e-9)
    for make in (lambda p: torch.optim.Adam(p, lr=0.05), lambda p: torch.optim.AdamW(p, lr=0.05),
                 lambda p: torch.optim.RMSprop(p, lr=0.01)):
        assert math.isclose(_train("mean", make), _train("sum", make), rel_tol=1e-6)


def test_why_losses_2_coupled_weight_decay_and_norm_clipping_do_not_cancel():
    adam_l2 = lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=1.0)  # noqa: E731
    # run to equilibrium: mean settles near 2 * 2 / (2 + 1), sum near 2 * 256 / (256 + 1)
    assert _train("sum", adam_l2, steps=400) - _train("mean", adam_l2, steps=400) > 0.4
    adamw = lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=1.0)  # noqa: E731
    assert math.isclose(_train("mean", adamw), _train("sum", adamw), rel_tol=1e-6)
    sgd = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    sgd_over_n = lambda p: torch.optim.SGD(p, lr=0.1 / 128)  # noqa: E731
    clipped_mean = _train("mean", sgd, clip=1.0)
    clipped_sum = _train("sum", sgd_over_n, clip=1.0)
    assert abs(clipped_mean - clipped_sum) > 0.05


def test_why_losses_3_none_keeps_one_loss_per_element_or_per_sample():
    assert F.mse_loss(torch.randn(4, 3), torch.randn(4, 3), reduction="none").shape == (4, 3)
    ce = F.cross_entropy(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), reduction="none")
    assert ce.shape == (4,)


def test_why_losses_4_accumulating_8_micro_batches_needs_the_loss_divided_by_8():
    x = torch.randn(64, dtype=torch.float64)
    y = 3 * x
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    (full,) = torch.autograd.grad(F.mse_loss(w * x, y), w)
    for divide, factor in ((True, 1.0), (False, 8.0)):
        w.grad = None
        for xm, ym in zip(x.chunk(8), y.chunk(8)):
            loss = F.mse_loss(w * xm, ym)
            (loss / 8 if divide else loss).backward()
        torch.testing.assert_close(w.grad, factor * full)


# --- regression ----------------------------------------------------------------------------


def test_regression_1_gradients_for_an_error_of_4():
    target = torch.zeros(1, dtype=torch.float64)
    four = torch.full((1,), 4.0, dtype=torch.float64)
    expected = {F.mse_loss: 8.0, F.l1_loss: 1.0, F.huber_loss: 1.0, F.smooth_l1_loss: 1.0}
    for fn, g in expected.items():
        assert _grad(lambda p, fn=fn: fn(p, target, reduction="sum"), four).item() == g
        assert _grad(lambda p, fn=fn: fn(p, target, reduction="sum"), -four).item() == -g
        # with the default mean over 5 elements each element gets a fifth
        five = torch.full((5,), 4.0, dtype=torch.float64)
        zeros = torch.zeros(5, dtype=torch.float64)
        torch.testing.assert_close(_grad(lambda p, fn=fn: fn(p, zeros), five),
                                   torch.full((5,), g / 5, dtype=torch.float64))


def test_regression_2_smoothl1_equals_huber_only_at_beta_1():
    e = torch.linspace(-4, 4, 81, dtype=torch.float64)
    zero = torch.zeros_like(e)
    for beta in (0.25, 0.5, 1.0, 2.0):
        smooth = F.smooth_l1_loss(e, zero, beta=beta, reduction="none")
        huber = F.huber_loss(e, zero, delta=beta, reduction="none")
        torch.testing.assert_close(smooth, huber / beta)
        assert torch.allclose(smooth, huber) == (beta == 1.0)


def test_regression_2_at_an_error_of_4_smoothl1_beta_2_gives_3_and_huber_delta_2_gives_6():
    four, zero = torch.tensor([4.0]), torch.zeros(1)
    assert nn.SmoothL1Loss(beta=2.0)(four, zero).item() == 3.0
    assert nn.HuberLoss(delta=2.0)(four, zero).item() == 6.0


def test_regression_3_64_by_1_against_64_broadcasts_with_a_warning():
    pred, target = torch.randn(64, 1), torch.randn(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = nn.MSELoss()(pred, target)
    assert any("Using a target size (torch.Size([64])) that is different to the input size "
               "(torch.Size([64, 1]))" in str(w.message) for w in caught)
    torch.testing.assert_close(loss, ((pred - target[None, :]) ** 2).mean())
    assert ((pred - target[None, :]) ** 2).numel() == 4096
    torch.testing.assert_close(F.mse_loss(pred.squeeze(1), target),
                               F.mse_loss(pred, target.unsqueeze(1)))


def test_regression_4_l1_steps_keep_their_size_and_huber_steps_shrink():
    errors = torch.tensor([1e-4, 1e-2, 0.5], dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)
    assert _grad(lambda p: F.l1_loss(p, zero, reduction="sum"), errors).tolist() == [1.0] * 3
    assert _grad(lambda p: F.l1_loss(p, zero, reduction="sum"), zero).tolist() == [0.0] * 3
    torch.testing.assert_close(_grad(lambda p: F.huber_loss(p, zero, reduction="sum"), errors),
                               errors)


# --- binary --------------------------------------------------------------------------------


def test_binary_1_at_logit_15_bceloss_has_lost_digits_and_at_50_it_sits_on_its_clamp():
    z = torch.tensor([15.0, 50.0], requires_grad=True)
    via_sigmoid = F.binary_cross_entropy(torch.sigmoid(z), torch.zeros(2), reduction="none")
    (g,) = torch.autograd.grad(via_sigmoid.sum(), z)
    assert round(via_sigmoid[0].item(), 2) == 14.84 and via_sigmoid[1].item() == 100.0
    assert g[1].item() == 0.0
    stable = F.binary_cross_entropy_with_logits(z, torch.zeros(2), reduction="none")
    (g_stable,) = torch.autograd.grad(stable.sum(), z)
    assert [round(v, 2) for v in stable.tolist()] == [15.0, 50.0]
    assert g_stable[1].item() == 1.0


def test_binary_1_sigmoid_rounds_to_1_near_17_and_bceloss_sits_at_100_with_zero_gradient():
    z = torch.arange(10.0, 20.0, 0.01)
    edge = z[torch.sigmoid(z) == 1.0].min().item()
    assert 16.5 < edge < 17.0   # "from z ≈ 17" in binary and choosing
    logit = torch.tensor([50.0], requires_grad=True)
    loss = F.binary_cross_entropy(torch.sigmoid(logit), torch.zeros(1))
    (g,) = torch.autograd.grad(loss, logit)
    assert loss.item() == 100.0 and g.item() == 0.0
    true = F.binary_cross_entropy_with_logits(logit.detach(), torch.zeros(1))
    assert math.isclose(true.item(), 50.0, rel_tol=1e-6)   # "instead of about |z|"
    z_neg = torch.tensor([-100.0], requires_grad=True)
    loss_neg = F.binary_cross_entropy(torch.sigmoid(z_neg), torch.ones(1))
    (g_neg,) = torch.autograd.grad(loss_neg, z_neg)
    assert loss_neg.item() == 100.0 and g_neg.item() == 0.0


def test_binary_2_gradient_at_logit_minus_3_for_a_positive():
    g = _grad(lambda z: F.binary_cross_entropy_with_logits(z, torch.ones(1), reduction="sum"),
              torch.tensor([-3.0], dtype=torch.float64))
    assert round(g.item(), 3) == -0.953
    gw = _grad(lambda z: F.binary_cross_entropy_with_logits(
        z, torch.ones(1), pos_weight=torch.tensor(4.0), reduction="sum"),
        torch.tensor([-3.0], dtype=torch.float64))
    torch.testing.assert_close(gw, 4 * g)
    g_mean = _grad(lambda z: F.binary_cross_entropy_with_logits(z, torch.ones(5)),
                   torch.full((5,), -3.0, dtype=torch.float64))
    torch.testing.assert_close(g_mean, torch.full((5,), g.item() / 5, dtype=torch.float64))


def test_binary_3_pos_weight_19_for_50_positives_in_1000():
    target = torch.zeros(1000)
    target[:50] = 1.0
    pos_weight = classification.balanced_pos_weight(target)
    assert pos_weight.item() == 19.0
    assert (pos_weight * target.sum()).item() == (1 - target).sum().item()
    nn.BCEWithLogitsLoss(pos_weight=torch.tensor(19.0))(torch.zeros(3), torch.ones(3))
    with pytest.raises(TypeError, match="cannot assign 'float'"):
        nn.BCEWithLogitsLoss(pos_weight=19.0)


def test_binary_4_threshold_logits():
    assert torch.sigmoid(torch.tensor(0.0)).item() == 0.5
    z = torch.logit(torch.tensor(0.8, dtype=torch.float64))
    assert math.isclose(z.item(), math.log(4), rel_tol=1e-12)
    assert round(z.item(), 3) == 1.386


# --- multiclass ----------------------------------------------------------------------------


def test_multiclass_1_gradient_at_logits_2_0_0():
    g = _grad(lambda z: F.cross_entropy(z, torch.tensor([0])),
              torch.tensor([[2.0, 0.0, 0.0]], dtype=torch.float64))
    assert [round(v, 3) for v in g[0].tolist()] == [-0.213, 0.107, 0.107]
    p = torch.softmax(torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64), 0)
    assert [round(v, 3) for v in p.tolist()] == [0.787, 0.107, 0.107]


def test_multiclass_2_the_softmax_floor_for_100_classes():
    floor = classification.softmax_before_ce_floor(100)
    assert round(floor, 2) == 3.62
    reached = F.cross_entropy(F.one_hot(torch.tensor([0]), 100).double(), torch.tensor([0]))
    assert math.isclose(reached.item(), floor, rel_tol=1e-12)
    assert floor < math.log(100)
    assert round(math.log(100), 2) == 4.61


def test_multiclass_3_shapes_for_16_sentences_of_20_tokens_and_1000_words():
    logits = torch.randn(16, 20, 1000)
    target = torch.randint(0, 1000, (16, 20))
    target[:, 15:] = -100
    loss = F.cross_entropy(logits.permute(0, 2, 1), target)
    torch.testing.assert_close(loss, F.cross_entropy(logits[:, :15].reshape(-1, 1000),
                                                     target[:, :15].reshape(-1)))
    with pytest.raises(RuntimeError):
        F.cross_entropy(logits, target)   # not permuted: dimension 1 read as 20 classes


def test_multiclass_4_smoothing_01_over_10_classes_trains_towards_091_and_001():
    target = torch.tensor([3])
    q = torch.full((1, 10), 0.01, dtype=torch.float64)
    q[0, 3] = 0.91
    logits = torch.randn(1, 10, dtype=torch.float64)
    torch.testing.assert_close(F.cross_entropy(logits, target, label_smoothing=0.1),
                               F.cross_entropy(logits, q))
    at_q = F.cross_entropy(q.log(), target, label_smoothing=0.1)
    assert at_q < F.cross_entropy(q.log() + 0.1 * torch.randn(1, 10, dtype=torch.float64),
                                  target, label_smoothing=0.1)


# --- multilabel ----------------------------------------------------------------------------


def test_multilabel_1_twenty_tags_take_float_multi_hot_targets():
    logits = torch.randn(8, 20)
    target = (torch.rand(8, 20) < 0.2)
    nn.BCEWithLogitsLoss()(logits, target.float())
    with pytest.raises(RuntimeError, match="Long"):
        nn.BCEWithLogitsLoss()(logits, target.long())
    assert choosing.choose_loss("multi-label").loss.__class__ is nn.BCEWithLogitsLoss


def test_multilabel_2_logits_3_3_minus_10_softmax_halves_sigmoids_095():
    z = torch.tensor([3.0, 3.0, -10.0], dtype=torch.float64)
    soft, sig = torch.softmax(z, 0), torch.sigmoid(z)
    assert [round(v, 3) for v in soft[:2].tolist()] == [0.5, 0.5]
    assert [round(v, 3) for v in sig[:2].tolist()] == [0.953, 0.953]


def test_multilabel_2_no_two_softmax_outputs_exceed_a_half():
    p = torch.softmax(torch.randn(10_000, 3) * 5, dim=1)
    top2 = p.topk(2, dim=1).values
    assert (top2[:, 1] < 0.5).all()


def test_multilabel_3_pos_weight_99_for_a_label_at_1_percent():
    target = torch.zeros(1000, 4)
    target[:500, 0] = 1
    target[:10, 3] = 1
    assert classification.balanced_pos_weight(target)[3].item() == 99.0


def test_multilabel_4_gradient_per_label_depends_on_that_label_only():
    z = torch.randn(4, 5, dtype=torch.float64)
    y = (torch.rand(4, 5) < 0.4).double()
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    g = _grad(lambda x: F.binary_cross_entropy_with_logits(x, y, pos_weight=w), z)
    expected = (torch.sigmoid(z) * (1 + (w - 1) * y) - w * y) / z.numel()
    torch.testing.assert_close(g, expected)
    z2 = z.clone()
    z2[:, 1:] += 3.0    # move every other label's logit
    g2 = _grad(lambda x: F.binary_cross_entropy_with_logits(x, y, pos_weight=w), z2)
    torch.testing.assert_close(g2[:, 0], g[:, 0])


# --- beyond --------------------------------------------------------------------------------


def test_beyond_1_focal_at_p_t_08_loss_25_and_gradient_about_9_times_smaller():
    z = beyond.logit_of(torch.tensor([0.8], dtype=torch.float64), True).requires_grad_(True)
    one = torch.ones(1, dtype=torch.float64)
    ce = F.binary_cross_entropy_with_logits(z, one)
    focal = beyond.sigmoid_focal_loss(z, one, alpha=None, gamma=2.0)
    (g_ce,) = torch.autograd.grad(ce, z)
    (g_focal,) = torch.autograd.grad(focal, z)
    assert math.isclose(ce.item() / focal.item(), 25.0, rel_tol=1e-9)
    assert round((g_ce / g_focal).item()) == 9
    assert round((g_focal / g_ce).item(), 2) == 0.11


def test_beyond_2_distillation_call_matches_the_kl_formula_times_t_squared():
    s, t = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    temp = 3.0
    log_q = F.log_softmax(s / temp, dim=1)
    p = F.softmax(t / temp, dim=1)
    by_call = temp**2 * F.kl_div(log_q, p, reduction="batchmean")
    by_formula = temp**2 * (p * (p.log() - log_q)).sum(1).mean()
    torch.testing.assert_close(by_call, by_formula)
    torch.testing.assert_close(beyond.distillation_loss(s, t, temperature=temp), by_call)


def test_beyond_3_the_softened_kl_gradient_shrinks_like_one_over_t_squared():
    s, t = torch.randn(1, 5, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64)

    def grad_norm(temp):
        g = _grad(lambda x: F.kl_div(F.log_softmax(x / temp, 1), F.softmax(t / temp, 1),
                                     reduction="batchmean"), s)
        return g.norm().item()

    ratio = grad_norm(40.0) / grad_norm(20.0)
    assert abs(ratio - 0.25) < 0.01
    assert 0.9 < (40.0**2 * grad_norm(40.0)) / (20.0**2 * grad_norm(20.0)) < 1.1


def test_beyond_4_a_triplet_beyond_the_margin_sends_zero_and_one_at_the_margin_does_not():
    def grads(negative):
        a = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
        p = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
        n = torch.tensor(negative, dtype=torch.float64, requires_grad=True)
        loss = F.triplet_margin_loss(a, p, n, margin=1.0, eps=0.0)
        loss.backward()
        assert loss.item() == 0.0
        return [x.grad for x in (a, p, n)]

    beyond_margin = grads([[3.0, 0.0]])
    assert all(g is not None and g.abs().max().item() == 0.0 for g in beyond_margin)
    at_margin = grads([[2.0, 0.0]])
    assert max(g.abs().max().item() for g in at_margin) == 1.0


# --- choosing ------------------------------------------------------------------------------


def test_choosing_2_a_loss_of_exactly_100_is_the_bceloss_clamp():
    z = torch.tensor([20.0, -100.0, 2.0], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0])
    per_example = F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none")
    (g,) = torch.autograd.grad(per_example.sum(), z)
    assert per_example[:2].tolist() == [100.0, 100.0]
    assert g[:2].tolist() == [0.0, 0.0] and g[2].item() != 0.0
    fixed = F.binary_cross_entropy_with_logits(z.detach(), y, reduction="none")
    assert math.isclose(fixed[0].item(), 20.0, rel_tol=1e-6)


def test_choosing_3_float_class_indices_message_and_fixes():
    logits = torch.randn(3, 4)
    message = "expected target dtype to be Long or Byte, but got Float"
    with pytest.raises(RuntimeError, match=message):
        nn.CrossEntropyLoss()(logits, torch.tensor([0.0, 2.0, 1.0]))
    nn.CrossEntropyLoss()(logits, torch.tensor([0.0, 2.0, 1.0]).long())
    nn.CrossEntropyLoss()(logits, torch.softmax(torch.randn(3, 4), 1))


def test_choosing_gallery_silent_mistakes_are_the_three_named_and_mse_only_warns():
    symptoms = {m.name: m.run() for m in choosing.MISTAKES}
    silent = {k for k, v in symptoms.items() if v.startswith("no error")}
    assert silent == {"softmax before CrossEntropyLoss", "sigmoid then BCELoss",
                      "forgetting ignore_index for padding"}
    assert symptoms["output (N, 1) against target (N,)"].startswith(
        "MSE broadcasts to (8, 8) with a UserWarning")


def test_choosing_4_at_initialisation_ce_and_ce_after_softmax_both_read_log_10():
    torch.manual_seed(0)
    logits, target = 0.01 * torch.randn(256, 10), torch.randint(0, 10, (256,))
    for loss in (F.cross_entropy(logits, target),
                 F.cross_entropy(torch.softmax(logits, 1), target)):
        assert abs(loss.item() - math.log(10)) < 0.01
    assert round(math.log(10), 3) == 2.303


# --- scale ---------------------------------------------------------------------------------


def test_scale_1_bytes_of_256_by_32000_float32_logits_and_their_log_probabilities():
    assert scale.tensor_bytes((256, 32000), torch.float32) == 32_768_000
    logits = torch.empty(256, 32000)
    assert logits.untyped_storage().nbytes() == 32_768_000
    small = torch.randn(256, 320, requires_grad=True)
    target = torch.randint(0, 320, (256,))
    # the log-probabilities, as big as the logits, plus a 4-byte scalar (the total weight)
    saved = scale.saved_for_backward(scale.ce_fused, small, target)
    assert small.untyped_storage().nbytes() <= saved <= small.untyped_storage().nbytes() + 8


def test_scale_2_parameters_gradients_and_adam_state_do_not_depend_on_the_batch():
    layer = nn.Linear(16, 100)
    opt = torch.optim.Adam(layer.parameters())
    layer(torch.randn(4, 16)).sum().backward()
    opt.step()
    params = sum(p.numel() * p.element_size() for p in layer.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in layer.parameters())
    moments = sum(v.numel() * v.element_size() for state in opt.state.values()
                  for k, v in state.items() if k in ("exp_avg", "exp_avg_sq"))
    for b in (64, 128):
        parts = scale.training_memory(b, hidden=16, num_classes=100)
        assert (parts["parameters"], parts["gradients"], parts["Adam moments"]) == \
            (params, grads, moments)
    assert scale.training_memory(64, 16, 100)["logits"] * 2 == \
        scale.training_memory(128, 16, 100)["logits"]


def test_scale_2_halving_the_batch_of_the_output_layer_keeps_about_083_of_its_memory():
    full, half = (sum(scale.training_memory(b).values()) for b in (512, 256))
    assert round(half / full, 2) == 0.83
    per_batch = [k for k, v in scale.training_memory(512).items()
                 if v == scale.tensor_bytes((512, 50_000))]
    assert len(per_batch) == 4
    assert round(4 * scale.tensor_bytes((512, 50_000)) / 1e6) == 410
    fixed = sum(v for k, v in scale.training_memory(512).items() if k not in per_batch)
    assert round(fixed / 1e6) == 820


def test_scale_3_label_smoothing_drops_the_chunked_path_with_only_a_warning():
    gen = torch.Generator().manual_seed(0)
    h, w = torch.randn(256, 16, generator=gen), torch.randn(100, 16, generator=gen)
    y = torch.randint(0, 100, (256,), generator=gen)
    chunks = nn.LinearCrossEntropyOptions(batch_chunk_size=64)
    chunked = scale.linear_ce_run(h, w, y, options=chunks)
    assert not chunked["built_logits"] and not chunked["warnings"]
    smoothed = scale.linear_ce_run(h, w, y, options=chunks, label_smoothing=0.1)
    assert smoothed["built_logits"]
    assert any("options`` ignored" in m for m in smoothed["warnings"])
    assert scale.linear_ce_run(h, w, y)["built_logits"]        # options=None builds them too


def test_scale_3_linear_cross_entropy_chunked_matches_the_reference():
    hidden = torch.randn(64, 8, dtype=torch.float64)
    weight = torch.randn(300, 8, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 300, (64,))
    ref = F.cross_entropy(F.linear(hidden, weight), target)
    (g_ref,) = torch.autograd.grad(ref, weight)
    opts = nn.LinearCrossEntropyOptions(batch_chunk_size=16)
    chunked = F.linear_cross_entropy(hidden, weight, target, options=opts)
    (g_chunked,) = torch.autograd.grad(chunked, weight)
    torch.testing.assert_close(chunked, ref)
    torch.testing.assert_close(g_chunked, g_ref)


def test_scale_4_bfloat16_range_and_precision():
    bf16, f32 = torch.finfo(torch.bfloat16), torch.finfo(torch.float32)
    assert bf16.eps == 2.0**-7
    assert bf16.max > 1e38 and math.isclose(bf16.max, f32.max, rel_tol=1e-2)
    eight = torch.tensor(8.0, dtype=torch.bfloat16)
    above = torch.nextafter(eight, torch.tensor(16.0, dtype=torch.bfloat16))
    assert (above - eight).item() == 0.0625
    assert torch.isinf(torch.exp(torch.tensor(11.2, dtype=torch.float16)))
    assert not torch.isinf(torch.exp(torch.tensor(11.0, dtype=torch.float16)))


# --- probabilistic, margins, sequences -----------------------------------------------------

def test_probabilistic_3_gaussian_best_variance_for_an_error_of_two():
    var = torch.linspace(0.5, 10.0, 19001, dtype=torch.float64)
    loss = F.gaussian_nll_loss(torch.full_like(var, 2.0), torch.zeros_like(var), var,
                               reduction="none")
    assert var[loss.argmin()].item() == pytest.approx(4.0, abs=1e-3)
    assert loss.min().item() == pytest.approx(0.5 * (math.log(4) + 1), abs=1e-9)
    assert round(loss.min().item(), 3) == 1.193


def test_probabilistic_1_the_weighted_mean_divides_by_4():
    log_probs = torch.randn(3, 2, dtype=torch.float64).log_softmax(1)
    target = torch.tensor([0, 1, -100])
    weight = torch.tensor([1.0, 3.0], dtype=torch.float64)
    total = F.nll_loss(log_probs, target, weight=weight, reduction="sum")
    mean = F.nll_loss(log_probs, target, weight=weight)
    torch.testing.assert_close(mean, total / 4)


def test_probabilistic_4_the_gradient_below_eps_is_the_one_at_eps():
    var = torch.tensor([1e-9], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    loss = F.gaussian_nll_loss(zero, zero, var, reduction="sum")
    (g,) = torch.autograd.grad(loss, var)
    assert g.item() == pytest.approx(5e5, rel=1e-9)


def test_margins_2_a_long_multi_hot_row_is_read_as_the_indices_0_and_1():
    scores = torch.randn(1, 5, dtype=torch.float64)
    multi_hot = F.multilabel_margin_loss(scores, torch.tensor([[0, 1, 0, 1, 0]]))
    # classes 0 and 1 are the true ones; every entry adds its hinge terms against 2, 3, 4
    x = scores[0]
    by_hand = sum(F.relu(1 - (x[j] - x[i])) for j in [0, 1, 0, 1, 0] for i in [2, 3, 4]) / 5
    torch.testing.assert_close(multi_hot, by_hand)
    right = F.multilabel_margin_loss(scores, torch.tensor([[1, 3, -1, 0, 0]]))
    assert (right - multi_hot).abs().item() > 0


def test_margins_3_multilabel_soft_margin_equals_bce_with_logits():
    scores = torch.randn(6, 5, dtype=torch.float64)
    y = (torch.rand(6, 5) < 0.4).double()
    torch.testing.assert_close(F.multilabel_soft_margin_loss(scores, y),
                               F.binary_cross_entropy_with_logits(scores, y))


def test_margins_4_a_satisfied_triplet_with_cosine_distance_sends_nothing():
    def cos_dist(x, y):
        return 1 - F.cosine_similarity(x, y)

    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([[1.0, 0.1]], dtype=torch.float64, requires_grad=True)
    n = torch.tensor([[-1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss = F.triplet_margin_with_distance_loss(a, p, n, distance_function=cos_dist, margin=0.5)
    loss.backward()
    assert loss.item() == 0.0
    assert all(x.grad.abs().max().item() == 0.0 for x in (a, p, n))


def test_sequences_4_a_head_word_costs_1025024_multiply_adds():
    cost = sequences.adaptive_token_cost(512, [2_000, 10_000], 50_000, 4.0, 0)
    assert cost == 512 * 2002 == 1_025_024
    assert sequences.adaptive_token_cost(512, [2_000, 10_000], 50_000, 4.0, 1999) == cost
    assert sequences.adaptive_token_cost(512, [2_000, 10_000], 50_000, 4.0, 2000) > cost


def test_reference_1_ctc_gives_one_loss_per_sequence_and_kl_div_one_per_element():
    log_probs = torch.randn(10, 3, 5).log_softmax(2)
    targets = torch.randint(1, 5, (3, 4))
    ctc = nn.CTCLoss(reduction="none")(log_probs, targets, [10] * 3, [4] * 3)
    assert ctc.shape == (3,)
    kl = nn.KLDivLoss(reduction="none")(torch.randn(3, 5).log_softmax(1),
                                        torch.randn(3, 5).softmax(1))
    assert kl.shape == (3, 5)


def test_reference_2_poisson_nll_of_input_0_and_target_0_is_1():
    assert nn.PoissonNLLLoss()(torch.tensor([0.0]), torch.tensor([0.0])).item() == 1.0


def test_reference_3_multilabel_margin_stops_at_the_first_minus_1():
    scores = torch.randn(1, 4, dtype=torch.float64)
    torch.testing.assert_close(
        F.multilabel_margin_loss(scores, torch.tensor([[3, 0, -1, 1]])),
        F.multilabel_margin_loss(scores, torch.tensor([[3, 0, -1, -1]])))


def test_margins_1_multi_margin_of_scores_2_and_1_5():
    loss = F.multi_margin_loss(torch.tensor([[2.0, 1.5]]), torch.tensor([0]), margin=1.0)
    assert loss.item() == pytest.approx(0.25)


def test_sequences_1_and_2_ctc_extended_label_frames_and_mean():
    assert sequences.extended_label(torch.tensor([2, 1, 1])).tolist() == [0, 2, 0, 1, 0, 1, 0]
    log_probs = torch.randn(4, 1, 3, dtype=torch.float64).log_softmax(2)
    target = torch.tensor([[2, 1, 1]])
    assert torch.isfinite(F.ctc_loss(log_probs, target, [4], [3]))
    assert torch.isinf(F.ctc_loss(log_probs[:3], target, [3], [3]))
    # "mean" divides each loss by its target length before the batch mean.
    losses = torch.tensor([6.0, 3.0])
    assert (losses / torch.tensor([3.0, 1.0])).mean().item() == pytest.approx(2.5)
    lp = torch.randn(8, 2, 4, dtype=torch.float64).log_softmax(2)
    targets, lengths = torch.tensor([[1, 2, 3], [2, 0, 0]]), ([8, 8], [3, 1])
    none = F.ctc_loss(lp, targets, *lengths, reduction="none")
    assert F.ctc_loss(lp, targets, *lengths).item() == pytest.approx(
        (none / torch.tensor([3.0, 1.0], dtype=torch.float64)).mean().item())


# --- every chapter ends with questions that make the learner predict ----------------------

CHAPTERS_WITH_SELF_CHECKS = ["why_losses", "regression", "binary", "multiclass", "multilabel",
                             "beyond", "probabilistic", "margins", "sequences", "choosing",
                             "scale", "reference"]
KINDS = {"Predict a number", "Predict a shape", "Predict the error", "Predict the effect",
         "Recall"}


def _self_checks(chapter: str) -> list[tuple[int, str, str]]:
    """``(number, kind, question)`` of each dropdown in the chapter's "Self-check" section,
    read with MyST's own markdown parser."""
    import re
    from pathlib import Path

    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    text = (Path(__file__).parents[1] / "chapters" / f"{chapter}.md").read_text()
    parser = create_md_parser(MdParserConfig(enable_extensions={"colon_fence", "dollarmath"}),
                              RendererHTML)
    tokens = parser.parse(text)
    inside, found = False, []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h2":
            inside = tokens[i + 1].content.strip() == "Self-check"
        elif inside and tok.type == "colon_fence" and tok.info.startswith("{dropdown}"):
            title = tok.info[len("{dropdown}"):].strip()
            m = re.fullmatch(r"(\d+)\. ([A-Z][a-z]+(?: [a-z]+)*): (.+)", title)
            assert m, f"{chapter}: a self-check title reads 'N. Kind: question'; got {title!r}"
            assert tok.content.strip(), f"{chapter}: question {m[1]} has no answer"
            found.append((int(m[1]), m[2], m[3]))
    return found


@pytest.mark.parametrize("chapter", CHAPTERS_WITH_SELF_CHECKS)
def test_each_chapter_ends_with_at_least_three_prediction_questions(chapter):
    checks = _self_checks(chapter)
    kinds = [kind for _, kind, _ in checks]
    assert set(kinds) <= KINDS, f"{chapter}: unknown kinds {set(kinds) - KINDS}"
    assert [n for n, _, _ in checks] == list(range(1, len(checks) + 1))
    assert sum(k.startswith("Predict") for k in kinds) >= 3, f"{chapter}: {kinds}"
    assert kinds.count("Recall") <= 1, f"{chapter}: {kinds}"


@pytest.mark.parametrize("chapter", CHAPTERS_WITH_SELF_CHECKS)
def test_every_prediction_has_a_test_here_that_runs_its_answer(chapter):
    import re

    tests = [name for name in globals() if name.startswith(f"test_{chapter}_")]
    for number, kind, question in _self_checks(chapter):
        if kind.startswith("Predict"):
            pattern = rf"test_{chapter}_(\d+_and_)*{number}_"
            assert any(re.match(pattern, name) for name in tests), (
                f"{chapter} question {number} ({question[:60]}...) has no test named {pattern}")


def test_why_losses_none_gives_one_loss_per_sample_for_probability_targets_too():
    probs = torch.softmax(torch.randn(4, 3), 1)
    assert F.cross_entropy(torch.randn(4, 3), probs, reduction="none").shape == (4,)
    assert F.cross_entropy(torch.randn(4, 3, 5), torch.softmax(torch.randn(4, 3, 5), 1),
                           reduction="none").shape == (4, 5)
