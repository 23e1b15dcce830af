"""The one table of every loss in ``torch.nn``: shapes, options, formula, chapter, and an example.

``CATALOG`` has one :class:`Entry` per loss module. Each entry's ``example(shift=0.0)`` builds
a small seeded batch and returns the loss three ways: the ``nn`` module, the functional form,
and the formula as the course writes it; ``shift`` (a float, or a 0-d tensor for autograd) is
added to the first element of the batch's first input. The reference page runs every
example when the book is built and shows whether the three agree, so the page cannot drift
from PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import beyond, classification, margins, probabilistic, regression, sequences

DTYPE = torch.float64


@dataclass(frozen=True)
class Entry:
    """One loss of ``torch.nn``: how to call it, what it computes, where the course teaches it."""

    name: str
    functional: str
    input: str
    target: str
    options: str
    reductions: str
    formula: str
    chapter: str
    example: Callable[..., dict[str, torch.Tensor]]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=DTYPE)


def _signs(gen: torch.Generator, n: int) -> torch.Tensor:
    return torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0).to(DTYPE)


def _moved(t: torch.Tensor, shift) -> torch.Tensor:
    """``t`` with ``shift`` (a float or a 0-d tensor) added to its first element only."""
    first = torch.zeros_like(t)
    first.view(-1)[0] = 1.0
    return t + shift * first


def _ways(module, functional, formula) -> dict[str, torch.Tensor]:
    # Not detached: a caller may differentiate each way in ``shift``.
    return {"module": module, "functional": functional, "formula": formula}


# --- examples: each returns the loss from the module, the functional form and the formula ------

def _regression(name: str, module: nn.Module, fn: Callable, formula: Callable, **kw):
    def example(shift=0.0):
        gen = _gen(len(name))
        x, y = _randn(gen, 8) * 2, _randn(gen, 8)
        x = _moved(x, shift)
        return _ways(module(x, y), fn(x, y, **kw), formula(x, y, **kw).mean())
    return example


def _bce(shift=0.0):
    gen = _gen(1)
    logits, y = _randn(gen, 8), torch.rand(8, generator=gen).round()
    probs = torch.sigmoid(_moved(logits, shift))
    y = y.to(DTYPE)
    formula = -(y * probs.log() + (1 - y) * (1 - probs).log()).mean()
    return _ways(nn.BCELoss()(probs, y), F.binary_cross_entropy(probs, y), formula)


def _bce_logits(shift=0.0):
    gen = _gen(2)
    z, y = _randn(gen, 8, 3) * 3, torch.rand(8, 3, generator=gen).round().to(DTYPE)
    z = _moved(z, shift)
    w = torch.tensor([1.0, 2.0, 5.0], dtype=DTYPE)
    return _ways(nn.BCEWithLogitsLoss(pos_weight=w)(z, y),
                 F.binary_cross_entropy_with_logits(z, y, pos_weight=w),
                 classification.bce_stable(z, y, pos_weight=w).mean())


def _cross_entropy(shift=0.0):
    gen = _gen(3)
    z, y = _randn(gen, 8, 5), torch.randint(0, 5, (8,), generator=gen)
    z = _moved(z, shift)
    return _ways(nn.CrossEntropyLoss(label_smoothing=0.1)(z, y),
                 F.cross_entropy(z, y, label_smoothing=0.1),
                 classification.cross_entropy_formula(z, y, label_smoothing=0.1).mean())


def _nll(shift=0.0):
    gen = _gen(4)
    log_probs = _moved(_randn(gen, 8, 5), shift).log_softmax(dim=1)
    y = torch.randint(0, 5, (8,), generator=gen)
    y[1] = -100
    w = torch.tensor([1.0, 0.5, 2.0, 1.0, 3.0], dtype=DTYPE)
    return _ways(nn.NLLLoss(weight=w)(log_probs, y), F.nll_loss(log_probs, y, weight=w),
                 probabilistic.nll_formula(log_probs, y, weight=w))


def _kl_div(shift=0.0):
    gen = _gen(5)
    log_q = _moved(_randn(gen, 8, 5), shift).log_softmax(dim=1)
    p = _randn(gen, 8, 5).softmax(dim=1)
    return _ways(nn.KLDivLoss(reduction="batchmean")(log_q, p),
                 F.kl_div(log_q, p, reduction="batchmean"), beyond.kl_formula(log_q, p).mean())


def _poisson(shift=0.0):
    gen = _gen(6)
    log_rate = _moved(_randn(gen, 8), shift)
    counts = torch.poisson(torch.full((8,), 3.0, dtype=DTYPE), generator=gen)
    return _ways(nn.PoissonNLLLoss(full=True)(log_rate, counts),
                 F.poisson_nll_loss(log_rate, counts, full=True),
                 probabilistic.poisson_nll_formula(log_rate, counts, full=True))


def _gaussian(shift=0.0):
    gen = _gen(7)
    mean, y = _randn(gen, 8, 2), _randn(gen, 8, 2)
    mean = _moved(mean, shift)
    var = torch.rand(8, 1, generator=gen, dtype=DTYPE) + 0.1
    return _ways(nn.GaussianNLLLoss()(mean, y, var), F.gaussian_nll_loss(mean, y, var),
                 probabilistic.gaussian_nll_formula(mean, y, var))


def _margin_ranking(shift=0.0):
    gen = _gen(8)
    x1, x2, y = _randn(gen, 8), _randn(gen, 8), _signs(gen, 8)
    x1 = _moved(x1, shift)
    return _ways(nn.MarginRankingLoss(margin=0.5)(x1, x2, y),
                 F.margin_ranking_loss(x1, x2, y, margin=0.5),
                 margins.margin_ranking_formula(x1, x2, y, margin=0.5))


def _hinge_embedding(shift=0.0):
    gen = _gen(9)
    dist, y = _randn(gen, 8).abs() * 2, _signs(gen, 8)
    dist = _moved(dist, shift)
    return _ways(nn.HingeEmbeddingLoss(margin=2.0)(dist, y),
                 F.hinge_embedding_loss(dist, y, margin=2.0),
                 margins.hinge_embedding_formula(dist, y, margin=2.0))


def _soft_margin(shift=0.0):
    gen = _gen(10)
    x, y = _randn(gen, 8) * 2, _signs(gen, 8)
    x = _moved(x, shift)
    return _ways(nn.SoftMarginLoss()(x, y), F.soft_margin_loss(x, y),
                 margins.soft_margin_formula(x, y))


def _multi_margin(shift=0.0):
    gen = _gen(11)
    x, y = _randn(gen, 8, 4), torch.randint(0, 4, (8,), generator=gen)
    x = _moved(x, shift)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=DTYPE)
    return _ways(nn.MultiMarginLoss(p=2, margin=0.5, weight=w)(x, y),
                 F.multi_margin_loss(x, y, p=2, margin=0.5, weight=w),
                 margins.multi_margin_formula(x, y, p=2, margin=0.5, weight=w))


def _multilabel_margin(shift=0.0):
    gen = _gen(12)
    x = _moved(_randn(gen, 3, 4), shift)
    y = torch.tensor([[3, 0, -1, 1], [1, -1, 0, 0], [0, 1, 2, 3]])
    return _ways(nn.MultiLabelMarginLoss()(x, y), F.multilabel_margin_loss(x, y),
                 margins.multilabel_margin_formula(x, y))


def _multilabel_soft_margin(shift=0.0):
    gen = _gen(13)
    x, y = _randn(gen, 8, 4) * 2, torch.rand(8, 4, generator=gen).round().to(DTYPE)
    x = _moved(x, shift)
    return _ways(nn.MultiLabelSoftMarginLoss()(x, y), F.multilabel_soft_margin_loss(x, y),
                 margins.multilabel_soft_margin_formula(x, y))


def _cosine_embedding(shift=0.0):
    gen = _gen(14)
    x1, x2, y = _randn(gen, 8, 3), _randn(gen, 8, 3), _signs(gen, 8)
    x1, y[0] = _moved(x1, shift), 1.0
    return _ways(nn.CosineEmbeddingLoss(margin=0.2)(x1, x2, y),
                 F.cosine_embedding_loss(x1, x2, y, margin=0.2),
                 beyond.cosine_embedding_formula(x1, x2, y, margin=0.2).mean())


def _triplet(shift=0.0):
    gen = _gen(15)
    a, p, n = _randn(gen, 8, 3), _randn(gen, 8, 3), _randn(gen, 8, 3)
    a = _moved(a, shift)
    return _ways(nn.TripletMarginLoss(margin=1.0)(a, p, n), F.triplet_margin_loss(a, p, n),
                 beyond.triplet_formula(a, p, n, margin=1.0).mean())


def _triplet_distance(shift=0.0):
    gen = _gen(16)
    a, p, n = _randn(gen, 8, 3), _randn(gen, 8, 3), _randn(gen, 8, 3)
    a = _moved(a, shift)
    d = margins.cosine_distance
    return _ways(nn.TripletMarginWithDistanceLoss(distance_function=d, margin=0.5, swap=True)(
                     a, p, n),
                 F.triplet_margin_with_distance_loss(a, p, n, distance_function=d, margin=0.5,
                                                     swap=True),
                 margins.triplet_with_distance_formula(a, p, n, d, margin=0.5, swap=True))


def _ctc(shift=0.0):
    gen = _gen(17)
    log_probs = _moved(_randn(gen, 12, 2, 5), shift).log_softmax(dim=2)
    targets = torch.tensor([[1, 2, 2, 3], [4, 1, 0, 0]])
    lengths = ([12, 9], [4, 2])
    return _ways(nn.CTCLoss()(log_probs, targets, *lengths),
                 F.ctc_loss(log_probs, targets, *lengths),
                 sequences.ctc_formula(log_probs, targets, *lengths))


def _adaptive(shift=0.0):
    torch.manual_seed(18)
    module = nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[4, 10], div_value=2.0).to(DTYPE)
    gen = _gen(18)
    x, y = _randn(gen, 6, 8), torch.tensor([0, 3, 4, 9, 10, 19])
    x = _moved(x, shift)
    second = -module.log_prob(x).gather(1, y.unsqueeze(1)).mean()
    return _ways(module(x, y).loss, second, -sequences.adaptive_log_prob(module, x, y).mean())


def _linear_cross_entropy(shift=0.0):
    torch.manual_seed(19)
    module = nn.LinearCrossEntropyLoss(8, 6, dtype=DTYPE)
    gen = _gen(19)
    h, y = _randn(gen, 5, 8), torch.randint(0, 6, (5,), generator=gen)
    h = _moved(h, shift)
    return _ways(module(h, y), F.linear_cross_entropy(h, module.linear.weight, y),
                 classification.cross_entropy_formula(h @ module.linear.weight.T, y).mean())


MEAN = "mean (default), sum, none"
REAL = "float (*)"

CATALOG: dict[str, Entry] = {e.name: e for e in [
    Entry("L1Loss", "F.l1_loss", REAL, "float, same shape", "—", MEAN, "|x − y|",
          "chapters/regression",
          _regression("L1Loss", nn.L1Loss(), F.l1_loss, regression.l1_formula)),
    Entry("MSELoss", "F.mse_loss", REAL, "float, same shape", "—", MEAN, "(x − y)²",
          "chapters/regression",
          _regression("MSELoss", nn.MSELoss(), F.mse_loss, regression.mse_formula)),
    Entry("HuberLoss", "F.huber_loss", REAL, "float, same shape", "delta=1.0", MEAN,
          "e²/2 if |e| ≤ δ, else δ(|e| − δ/2); e = x − y", "chapters/regression",
          _regression("HuberLoss", nn.HuberLoss(delta=2.0), F.huber_loss,
                      regression.huber_formula, delta=2.0)),
    Entry("SmoothL1Loss", "F.smooth_l1_loss", REAL, "float, same shape", "beta=1.0", MEAN,
          "e²/(2β) if |e| < β, else |e| − β/2 (= Huber/β)", "chapters/regression",
          _regression("SmoothL1Loss", nn.SmoothL1Loss(beta=0.5), F.smooth_l1_loss,
                      regression.smooth_l1_formula, beta=0.5)),
    Entry("BCELoss", "F.binary_cross_entropy", "probabilities in [0, 1], float (*)",
          "float 0..1, same shape", "weight", MEAN,
          "−w [y log p + (1 − y) log(1 − p)], each log clamped at −100", "chapters/binary",
          _bce),
    Entry("BCEWithLogitsLoss", "F.binary_cross_entropy_with_logits", "logits, float (*)",
          "float 0..1, same shape", "weight, pos_weight (per label)", MEAN,
          "−w [pw·y log σ(z) + (1 − y) log σ(−z)]", "chapters/binary", _bce_logits),
    Entry("CrossEntropyLoss", "F.cross_entropy", "logits, float (N, C) or (N, C, d…)",
          "long class indices (N) or (N, d…), or float probabilities like the input",
          "weight, ignore_index=−100, label_smoothing", MEAN + "; mean by weight sum",
          "−w[y] log softmax(z)[y]", "chapters/multiclass", _cross_entropy),
    Entry("NLLLoss", "F.nll_loss", "log-probabilities, float (N, C) or (N, C, d…)",
          "long class indices (N) or (N, d…)", "weight, ignore_index=−100",
          MEAN + "; mean by weight sum", "−w[y] x[y]", "chapters/probabilistic", _nll),
    Entry("KLDivLoss", "F.kl_div", "log-probabilities q, float (N, C)",
          "probabilities p (or log with log_target), same shape", "log_target=False",
          "batchmean (use it), mean, sum, none", "p (log p − log q), summed per row",
          "chapters/beyond", _kl_div),
    Entry("PoissonNLLLoss", "F.poisson_nll_loss", "log-rate θ (or rate λ), float (*)",
          "counts, float, same shape", "log_input=True, full=False, eps=1e-8", MEAN,
          "exp(θ) − yθ (or λ − y log(λ + eps)); full adds y log y − y + ½ log(2πy)",
          "chapters/probabilistic", _poisson),
    Entry("GaussianNLLLoss", "F.gaussian_nll_loss", "mean, float (N, *)",
          "float, same shape; var: (N, *), (N, 1) or (N,), positive", "full=False, eps=1e-6",
          MEAN, "½ [log max(var, eps) + (x − y)² / max(var, eps)] (+ ½ log 2π with full)",
          "chapters/probabilistic", _gaussian),
    Entry("MarginRankingLoss", "F.margin_ranking_loss", "scores x1, x2, float (N)",
          "±1 float (N)", "margin=0", MEAN, "max(0, −y (x1 − x2) + margin)",
          "chapters/margins", _margin_ranking),
    Entry("HingeEmbeddingLoss", "F.hinge_embedding_loss", "distances, float (*)",
          "±1 float, same shape", "margin=1.0", MEAN, "x if y = 1, max(0, margin − x) if y = −1",
          "chapters/margins", _hinge_embedding),
    Entry("SoftMarginLoss", "F.soft_margin_loss", "scores, float (*)", "±1 float, same shape",
          "—", MEAN, "log(1 + exp(−y x))", "chapters/margins", _soft_margin),
    Entry("MultiMarginLoss", "F.multi_margin_loss", "scores, float (N, C)",
          "long class indices (N)", "p=1 (or 2), margin=1, weight", MEAN,
          "Σ_{i≠y} w[y] max(0, margin − x[y] + x[i])^p / C", "chapters/margins",
          _multi_margin),
    Entry("MultiLabelMarginLoss", "F.multilabel_margin_loss", "scores, float (N, C)",
          "long class indices (N, C), ended by −1", "—", MEAN,
          "Σ_{j ∈ y} Σ_{i ∉ y} max(0, 1 − (x[j] − x[i])) / C", "chapters/margins",
          _multilabel_margin),
    Entry("MultiLabelSoftMarginLoss", "F.multilabel_soft_margin_loss", "logits, float (N, C)",
          "float multi-hot (N, C)", "weight (C)", MEAN,
          "−(1/C) Σ_c w_c [y log σ(x) + (1 − y) log σ(−x)]", "chapters/margins",
          _multilabel_soft_margin),
    Entry("CosineEmbeddingLoss", "F.cosine_embedding_loss", "x1, x2, float (N, D)",
          "±1 float (N)", "margin=0", MEAN, "1 − cos if y = 1, max(0, cos − margin) if y = −1",
          "chapters/beyond", _cosine_embedding),
    Entry("TripletMarginLoss", "F.triplet_margin_loss", "anchor, positive, negative (N, D)",
          "— (the roles are the target)", "margin=1, p=2, eps=1e-6, swap=False", MEAN,
          "max(0, ‖a − p‖ − ‖a − n‖ + margin)", "chapters/beyond", _triplet),
    Entry("TripletMarginWithDistanceLoss", "F.triplet_margin_with_distance_loss",
          "anchor, positive, negative (N, D)", "— (the roles are the target)",
          "distance_function=pairwise L2, margin=1, swap=False", MEAN,
          "max(0, d(a, p) − d(a, n) + margin)", "chapters/margins", _triplet_distance),
    Entry("CTCLoss", "F.ctc_loss", "log-probabilities, float (T, N, C)",
          "long (N, S) padded or (ΣS) concatenated; input_lengths, target_lengths (N)",
          "blank=0, zero_infinity=False", "mean (each ÷ target length, then batch mean), sum, none",
          "−log Σ over alignments π of the target Π_t p_t(π_t)", "chapters/sequences", _ctc),
    Entry("AdaptiveLogSoftmaxWithLoss", "— (module only; log_prob, predict)",
          "hidden states, float (N, in_features)", "long class indices (N)",
          "cutoffs, div_value=4, head_bias=False", "mean only (returns output and loss)",
          "−log p(y): head score, plus cluster score within a tail cluster",
          "chapters/sequences", _adaptive),
    Entry("LinearCrossEntropyLoss", "F.linear_cross_entropy",
          "hidden states, float (N, in_features); the module holds W (C, in_features)",
          "long class indices (N)",
          "options=None (LinearCrossEntropyOptions(batch_chunk_size=...) chunks), weight, "
          "ignore_index, label_smoothing, bias=False",
          MEAN, "cross-entropy of h Wᵀ; builds the (N, C) logits unless options chunks them",
          "chapters/scale", _linear_cross_entropy),
]}


def torch_losses() -> list[str]:
    """Every loss module ``torch.nn`` has: the names ending in ``Loss`` (which already include
    ``AdaptiveLogSoftmaxWithLoss``; it is added in case a release renames the others)."""
    return sorted({n for n in dir(nn) if n.endswith("Loss")} | {"AdaptiveLogSoftmaxWithLoss"})


def run_example(entry: Entry, atol: float = 1e-10) -> tuple[float, float]:
    """Run an entry's example; ``(loss value, largest gap between the three ways)``.

    Raises ``AssertionError`` naming the loss when the module, functional form and course
    formula disagree by more than ``atol``.
    """
    with torch.no_grad():
        values = entry.example()
    ref = values["module"]
    gap = max(float((v - ref).abs().max()) for v in values.values())
    if not gap <= atol:
        raise AssertionError(f"{entry.name}: module, functional and formula differ by {gap:.3g}: "
                             f"{ {k: float(v) for k, v in values.items()} }")
    return float(ref), gap
