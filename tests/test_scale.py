"""Cross-entropy at scale: byte counts, the compared forms, chunking and low precision."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from losslab.losses import scale

torch.manual_seed(0)


def test_bytes_of_the_large_vocabulary_case():
    assert scale.tensor_bytes((128, 50_000), torch.float32) == 25_600_000
    assert 3 * scale.tensor_bytes((128, 50_000)) == 76_800_000  # not 768 MB
    assert scale.tensor_bytes((128, 50_000), torch.bfloat16) == 12_800_000
    assert scale.tensor_bytes((256, 32_000)) == 32_768_000


@pytest.mark.parametrize("name", list(scale.VARIANTS))
def test_every_form_matches_cross_entropy_in_value_and_gradient(name):
    logits = torch.randn(70, 300, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 300, (70,))
    want = F.cross_entropy(logits, target)
    (g_want,) = torch.autograd.grad(want, logits)
    got = scale.VARIANTS[name](logits, target)
    (g_got,) = torch.autograd.grad(got, logits)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g_got, g_want)


def test_saved_for_backward_counts_the_log_probabilities():
    logits = torch.randn(64, 1000)
    target = torch.randint(0, 1000, (64,))
    one = scale.tensor_bytes((64, 1000))
    assert scale.saved_for_backward(scale.ce_log_softmax_gather, logits, target) == one
    assert scale.saved_for_backward(scale.ce_softmax_log, logits, target) == 2 * one
    assert abs(scale.saved_for_backward(scale.ce_fused, logits, target) - one) < 64
    assert scale.saved_for_backward(scale.chunked_cross_entropy, logits, target) < one // 10


def test_scale_table_rows_cover_the_grid():
    rows = scale.scale_table([4, 8], [10], device=torch.device("cpu"), min_run_time=0.01,
                             variants={"F.cross_entropy": scale.ce_fused})
    assert [(r["B"], r["C"]) for r in rows] == [(4, 10), (8, 10)]
    assert all(r["ms"] > 0 and r["logits_MB"] == r["B"] * 10 * 4 / 1e6 for r in rows)


def test_quadrupling_the_batch_does_not_quadruple_the_layer_memory():
    small = sum(scale.training_memory(128).values())
    large = sum(scale.training_memory(512).values())
    assert 1 < large / small < 4
    assert scale.training_memory(128)["parameters"] == (1024 * 50_000 + 50_000) * 4


def test_low_precision_claims_of_the_chapter():
    assert torch.finfo(torch.float16).max == 65504
    assert math.exp(11.0) < 65504 < math.exp(11.1)
    assert 8 * torch.finfo(torch.bfloat16).eps == 0.0625
    loss32, _ = scale.margin_ce(10, torch.float32)
    loss_bf16, _ = scale.margin_ce(10, torch.bfloat16)
    assert (loss32 > 0).all()
    assert (loss_bf16 == 0).any()  # bfloat16 reports exactly 0 where float32 does not
    assert len(set(loss_bf16.tolist())) < len(set(loss32.tolist()))


def test_profiled_peak_of_cross_entropy_is_three_b_by_c_tensors():
    logits = torch.randn(64, 5000)
    target = torch.randint(0, 5000, (64,))
    peak, ops = scale.profiled_peak_bytes(
        lambda: F.cross_entropy(logits.detach().requires_grad_(True), target).backward())
    one = scale.tensor_bytes((64, 5000))
    assert abs(peak - 3 * one) < 1024
    assert set(ops) == {"aten::_log_softmax", "aten::nll_loss_backward",
                        "aten::_log_softmax_backward_data"}


def test_chunking_the_logits_still_allocates_a_full_gradient_in_split_backward():
    logits = torch.randn(64, 5000)
    target = torch.randint(0, 5000, (64,))
    _, ops = scale.profiled_peak_bytes(lambda: scale.chunked_cross_entropy(
        logits.detach().requires_grad_(True), target, 8).backward())
    assert ops["aten::cat"] == scale.tensor_bytes((64, 5000))


def test_linear_cross_entropy_forms_agree_and_the_chunked_path_never_holds_the_logits():
    rows = scale.linear_ce_comparison(batch=256, hidden=32, num_classes=4000, chunk_size=64,
                                      min_run_time=0.01)
    full = scale.tensor_bytes((256, 4000)) / 1e6
    assert len(rows) == 4
    for r in rows:
        assert math.isclose(r["loss"], rows[0]["loss"], rel_tol=1e-5)
        assert r["max_grad_diff"] < 1e-6
        assert r["median_ms"] > 0 and r["iqr_ms"] >= 0 and r["runs"] >= 1
    assert math.isclose(rows[0]["peak_MB"], 3 * full, rel_tol=1e-3)
    assert rows[-1]["peak_MB"] < full


def test_bfloat16_stores_seven_mantissa_bits():
    assert torch.finfo(torch.bfloat16).eps == 2.0 ** -7
    assert torch.finfo(torch.bfloat16).bits == 16
