"""The contrastive chapter: its losses against pytorch-metric-learning, its widget against
autograd, and its self-check answers.

``NTXentLoss`` and ``SupConLoss`` of pytorch-metric-learning are the references (pinned as
test-only dependencies in requirements.txt); they compare cosine similarities, as the course's
functions do. Computed in float64 so the two agree to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning.reducers import DoNothingReducer

from losslab.figures import contrastive as figures
from losslab.losses import contrastive

f64 = torch.float64


@pytest.mark.parametrize("n", [2, 5, 16])
@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5, 1.0])
def test_nt_xent_matches_pytorch_metric_learning(n, temperature):
    gen = torch.Generator().manual_seed(n)
    z1 = torch.randn(n, 8, generator=gen, dtype=f64)
    z2 = torch.randn(n, 8, generator=gen, dtype=f64)
    labels = torch.cat([torch.arange(n), torch.arange(n)])
    theirs = pml.NTXentLoss(temperature=temperature)(torch.cat([z1, z2]), labels)
    torch.testing.assert_close(contrastive.nt_xent(z1, z2, temperature), theirs,
                               rtol=1e-9, atol=1e-12)
    # "sum" and "none" are the same per-embedding losses
    per = contrastive.nt_xent(z1, z2, temperature, reduction="none")
    assert per.shape == (2 * n,)
    torch.testing.assert_close(per.mean(), theirs, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(contrastive.nt_xent(z1, z2, temperature, reduction="sum"),
                               per.sum())


def test_nt_xent_gradient_matches_pytorch_metric_learning():
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(12, 6, generator=gen, dtype=f64)
    ours = z.clone().requires_grad_(True)
    theirs = z.clone().requires_grad_(True)
    (g_ours,) = torch.autograd.grad(contrastive.nt_xent(ours[:6], ours[6:], 0.2), ours)
    labels = torch.cat([torch.arange(6), torch.arange(6)])
    (g_theirs,) = torch.autograd.grad(pml.NTXentLoss(temperature=0.2)(theirs, labels), theirs)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("labels", [
    [0, 0, 1, 1, 2, 2, 3, 3],
    [0, 0, 0, 1, 1, 2, 2, 2],
    [0, 1, 1, 1, 1, 2, 3, 3],          # anchors 0 and 5 have no positive
])
@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5])
def test_supcon_matches_pytorch_metric_learning(labels, temperature):
    gen = torch.Generator().manual_seed(len(labels) + int(100 * temperature))
    features = torch.randn(len(labels), 10, generator=gen, dtype=f64)
    labels = torch.tensor(labels)
    theirs = pml.SupConLoss(temperature=temperature)(features, labels)
    torch.testing.assert_close(contrastive.supcon(features, labels, temperature), theirs,
                               rtol=1e-9, atol=1e-12)
    per_anchor = pml.SupConLoss(temperature=temperature, reducer=DoNothingReducer())(
        features, labels)["loss"]["losses"]
    ours = contrastive.supcon(features, labels, temperature, reduction="none")
    torch.testing.assert_close(ours, per_anchor, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(contrastive.supcon(features, labels, temperature, reduction="sum"),
                               ours.sum())


def test_supcon_with_every_label_twice_is_nt_xent():
    z = torch.randn(10, 4, dtype=f64)
    labels = torch.cat([torch.arange(5), torch.arange(5)])
    torch.testing.assert_close(contrastive.supcon(z, labels, 0.3),
                               contrastive.nt_xent(z[:5], z[5:], 0.3))


def test_supcon_refuses_a_batch_without_any_positive():
    with pytest.raises(ValueError, match="appears once"):
        contrastive.supcon(torch.randn(3, 4), torch.tensor([0, 1, 2]))


def test_info_nce_is_cross_entropy_over_cosines_and_the_symmetric_clip_loss():
    q, k = torch.randn(6, 5, dtype=f64), torch.randn(6, 5, dtype=f64)
    cos = F.cosine_similarity(q[:, None], k[None], dim=-1)
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(contrastive.info_nce(q, k, 0.2, reduction=reduction),
                                   F.cross_entropy(cos / 0.2, torch.arange(6), reduction=reduction))
    scale = torch.tensor(math.log(20.0), dtype=f64)
    rows = F.cross_entropy(20 * cos, torch.arange(6), reduction="none")
    cols = F.cross_entropy(20 * cos.T, torch.arange(6), reduction="none")
    torch.testing.assert_close(contrastive.clip_loss(q, k, scale, reduction="none"),
                               (rows + cols) / 2)
    torch.testing.assert_close(contrastive.clip_loss(q, k, scale), (rows.mean() + cols.mean()) / 2)


def test_clip_module_learns_its_scale_and_caps_it_at_100():
    clip = contrastive.CLIPLoss()
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)                # e^10 is far above the cap
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    capped = contrastive.clip_loss(q, k, torch.tensor(math.log(100.0)))
    torch.testing.assert_close(clip(q, k), capped)


def test_bad_input_says_what_was_expected():
    with pytest.raises(ValueError, match=r"temperature must be > 0; got 0"):
        contrastive.info_nce(torch.randn(3, 2), torch.randn(3, 2), temperature=0)
    with pytest.raises(ValueError, match=r"\(N, D\); got \(3, 2\) and \(4, 2\)"):
        contrastive.nt_xent(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"shape \(N, D\); got shape \(3,\)"):
        contrastive.info_nce(torch.randn(3), torch.randn(3))


def test_loss_from_similarities_is_info_nce_of_one_anchor_and_its_gradient_is_p_over_tau():
    s_pos = torch.tensor(0.4, dtype=f64)
    s_neg = torch.tensor([0.3, -0.2, 0.9], dtype=f64, requires_grad=True)
    loss = contrastive.loss_from_similarities(s_pos, s_neg, 0.1)
    expected = -torch.log(torch.exp(s_pos / 0.1) / (torch.exp(s_pos / 0.1)
                                                    + torch.exp(s_neg.detach() / 0.1).sum()))
    torch.testing.assert_close(loss, expected)
    (g,) = torch.autograd.grad(loss, s_neg)
    p = torch.cat([s_pos.reshape(1), s_neg.detach()]).div(0.1).softmax(0)[1:]
    torch.testing.assert_close(g, p / 0.1)


# --- the widget -------------------------------------------------------------------------------

def test_the_widget_gradient_is_autograd_and_matches_p_over_tau():
    for tau in figures.TEMPERATURES:
        for batch in (2, 32):
            loss, grad, analytic = figures.moving_negative(tau, batch)
            np.testing.assert_allclose(grad, analytic, rtol=1e-9, atol=1e-12)
            assert np.all(np.diff(loss) >= 0), "a harder negative never costs less"


def test_a_lower_temperature_gives_the_hardest_negative_more_of_the_push():
    shares = [figures.push_shares(t)[-1] for t in figures.TEMPERATURES]
    assert all(a > b for a, b in zip(shares, shares[1:]))
    for t in figures.TEMPERATURES:
        assert figures.push_shares(t).sum() == pytest.approx(1.0)


# --- self-checks ------------------------------------------------------------------------------

def test_contrastive_1_random_embeddings_score_about_log_n():
    q, k = torch.randn(256, 2048, dtype=f64), torch.randn(256, 2048, dtype=f64)
    loss = contrastive.info_nce(q, k, temperature=1.0).item()
    assert loss == pytest.approx(math.log(256), abs=0.02)
    assert math.log(256) == pytest.approx(5.55, abs=0.005)


def test_contrastive_2_nt_xent_on_32_images_is_a_64_by_64_matrix_with_62_negatives():
    n = 32
    z = torch.randn(2 * n, 4)
    logits = F.normalize(z, dim=1) @ F.normalize(z, dim=1).T
    assert logits.shape == (64, 64)
    labels = torch.cat([torch.arange(n), torch.arange(n)])
    same = labels[:, None] == labels[None]
    # per row: itself masked, one positive (same label), the rest negatives
    assert ((~same).sum(1) == 62).all()
    per_row = contrastive.nt_xent(z[:n], z[n:], 0.5, reduction="none")
    assert per_row.shape == (64,)


def test_contrastive_3_lowering_tau_concentrates_the_push_on_the_hardest_negative():
    hard_05, hard_005 = figures.push_shares(0.5)[-1], figures.push_shares(0.05)[-1]
    easy_05, easy_005 = figures.push_shares(0.5)[0], figures.push_shares(0.05)[0]
    assert hard_005 > hard_05 and easy_005 < easy_05
    assert easy_005 < 1e-6


def test_contrastive_4_a_duplicated_example_cannot_go_below_log_2():
    x = torch.randn(4, 8, dtype=f64)
    x[1] = x[0]
    for tau in (0.1, 0.01, 0.001):
        row = contrastive.info_nce(x, x, temperature=tau, reduction="none")[0]
        assert row.item() >= math.log(2) - 1e-12
    assert row.item() == pytest.approx(math.log(2), abs=1e-9)
    assert math.log(2) == pytest.approx(0.693, abs=5e-4)
