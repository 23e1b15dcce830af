"""The sequences chapter's figures: what CTC adds up, and the adaptive softmax's two terms."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..engine import widgets
from ..losses import sequences

SYMBOLS = ["blank", "a", "b", "c"]
FRAMES = 10
CTC_LOGITS = 1.5 * torch.randn(FRAMES, len(SYMBOLS), generator=torch.Generator().manual_seed(3),
                               dtype=torch.float64)
CTC_TARGETS = {"a b": (1, 2), "a a": (1, 1), "a b c": (1, 2, 3), "c a b a": (3, 1, 2, 1)}
BLANK_BIASES = [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
BIAS_GRID = torch.linspace(-3.0, 4.0, 71, dtype=torch.float64)


def biased(bias: float) -> torch.Tensor:
    """The fixed logits (T, C) with ``bias`` added to the blank's logit at every frame."""
    shift = torch.zeros(len(SYMBOLS), dtype=torch.float64)
    shift[0] = bias
    return CTC_LOGITS + shift


@functools.cache
def ctc_frame(target: tuple[int, ...], bias: float):
    """``(softmax per frame, alignment posterior per frame)``, each (T, C), at one bias."""
    _, posterior = sequences.ctc_symbol_posteriors(biased(bias), torch.tensor(target))
    return biased(bias).softmax(dim=1).numpy(), posterior.numpy()


@functools.cache
def ctc_over_bias(target: tuple[int, ...]):
    """CTC loss of ``target`` over BIAS_GRID and its autograd derivative in the blank bias."""
    bias = BIAS_GRID.clone().requires_grad_(True)
    shift = torch.zeros(len(BIAS_GRID), 1, len(SYMBOLS), dtype=torch.float64)
    shift[:, 0, 0] = 1.0
    log_probs = (CTC_LOGITS.unsqueeze(0) + bias[:, None, None] * shift).log_softmax(dim=2)
    n = len(BIAS_GRID)
    loss = F.ctc_loss(log_probs.transpose(0, 1), torch.tensor([target] * n), [FRAMES] * n,
                      [len(target)] * n, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), bias)
    return loss.detach().numpy(), grad.numpy()


def ctc_explorer() -> widgets.Figure:
    """Per-frame alignment posteriors of each symbol, and CTC loss against the blank bias."""
    frames = np.arange(FRAMES, dtype=float)
    bias_xs = BIAS_GRID.numpy()

    def point(i):
        def y(target, bias):
            j = int(np.argmin(np.abs(bias_xs - bias)))
            return ctc_over_bias(target)[i][j:j + 1]
        return y

    return widgets.figure(
        [
            widgets.Panel("alignment posterior per frame (from autograd)", "frame t",
                          "share of alignments emitting it", [
                              widgets.Series(s, frames, lambda target, bias, k=k:
                                             ctc_frame(target, bias)[1][:, k],
                                             ("target", "bias"), color=k)
                              for k, s in enumerate(SYMBOLS)], ylim=(-0.03, 1.03)),
            widgets.Panel("the model's softmax per frame", "frame t", "probability", [
                widgets.Series(s, frames, lambda bias, k=k: ctc_frame((1,), bias)[0][:, k],
                               ("bias",), color=k, style="dashed")
                for k, s in enumerate(SYMBOLS)], ylim=(-0.03, 1.03)),
            widgets.Panel("CTC loss against the blank bias", "blank bias", "−log p(target)", [
                widgets.Series("CTCLoss", bias_xs, lambda target: ctc_over_bias(target)[0],
                               ("target",)),
                widgets.Series("current bias", lambda bias, **_: np.array([bias]), point(0),
                               ("target", "bias"), kind="points", color=1),
            ], ylim=(0.0, 18.0)),
            widgets.Panel("gradient in the blank bias (autograd)", "blank bias",
                          "d loss / d bias", [
                widgets.Series("autograd", bias_xs, lambda target: ctc_over_bias(target)[1],
                               ("target",)),
                widgets.Series("current bias", lambda bias, **_: np.array([bias]), point(1),
                               ("target", "bias"), kind="points", color=1),
            ], ylim=(-3.5, 2.5)),
        ],
        [
            widgets.dropdown("target", CTC_TARGETS, label="target label"),
            widgets.slider("bias", BLANK_BIASES, label="blank logit bias", value=0.0),
        ],
        title="What CTC adds up, frame by frame",
    )


# --- AdaptiveLogSoftmaxWithLoss: the head term and the cluster term ----------------------------

IN_FEATURES, N_CLASSES, CUTOFFS = 16, 40, (8, 20)
ADAPTIVE_TARGETS = {"class 3 (head)": 3, "class 12 (cluster 1)": 12, "class 30 (cluster 2)": 30}
DIV_VALUES = [1.0, 2.0, 4.0]
STEPS = torch.linspace(-4.0, 4.0, 81, dtype=torch.float64)
# The hidden state moves this far per unit step: far enough to change which class wins.
DIRECTION_NORM = 3.0


def adaptive_module(div_value: float) -> nn.AdaptiveLogSoftmaxWithLoss:
    """The chapter's small adaptive softmax, with weights drawn from seed 0, in float64."""
    torch.manual_seed(0)
    module = nn.AdaptiveLogSoftmaxWithLoss(IN_FEATURES, N_CLASSES, list(CUTOFFS),
                                           div_value=div_value)
    return module.to(torch.float64)


@functools.cache
def adaptive_curves(target: int, div_value: float):
    """Loss of each hidden state, its head and within-cluster terms, and d loss / d s."""
    module = adaptive_module(div_value)
    steps = STEPS.clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(1)
    h0 = torch.randn(IN_FEATURES, generator=gen, dtype=torch.float64)
    d = torch.randn(IN_FEATURES, generator=gen, dtype=torch.float64)
    hidden = h0 + steps[:, None] * DIRECTION_NORM * d / d.norm()
    targets = torch.full((len(STEPS),), target)
    log_p = module(hidden, targets).output
    head = module.head(hidden).log_softmax(dim=1)
    cluster = target if target < CUTOFFS[0] else CUTOFFS[0] + (0 if target < CUTOFFS[1] else 1)
    (grad,) = torch.autograd.grad(-log_p.sum(), steps)
    head_term = -head[:, cluster].detach()
    return {"loss −log p(y)": -log_p.detach().numpy(), "head term": head_term.numpy(),
            "within-cluster term": (-log_p.detach() - head_term).numpy(),
            "gradient": grad.numpy()}


def adaptive_explorer() -> widgets.Figure:
    """AdaptiveLogSoftmaxWithLoss along a line of hidden states: the two terms of its loss."""
    xs = STEPS.numpy()
    depends = ("target", "div_value")
    parts = ["loss −log p(y)", "head term", "within-cluster term"]
    return widgets.figure(
        [
            widgets.Panel("loss and its two terms", "step s along a direction in hidden space",
                          "nats", [widgets.Series(p, xs, lambda p=p, **k: adaptive_curves(**k)[p],
                                                  depends, color=i,
                                                  style=["solid", "dashed", "dotted"][i])
                                   for i, p in enumerate(parts)]),
            widgets.Panel("gradient (autograd)", "step s along a direction in hidden space",
                          "d loss / d s", [widgets.Series(
                              "autograd", xs, lambda **k: adaptive_curves(**k)["gradient"],
                              depends)], ylim=(-1.8, 1.1)),
        ],
        [widgets.dropdown("target", ADAPTIVE_TARGETS, label="target class", value=30),
         widgets.slider("div_value", DIV_VALUES, label="div_value", value=4.0)],
        title="Adaptive softmax: head term and cluster term",
    )
