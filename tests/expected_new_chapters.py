"""Expected curves of the probabilistic, margins and sequences chapters' widgets.

Computed here with ``torch.nn.functional``, ``torch.nn`` and ``torch.autograd`` for the
control values shown in the browser (``{control label: shown value}``), independently of
the figure builders in ``losslab``. Merged into ``expected_curves.EXPECTED``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

f64 = torch.float64


def _on(value: str) -> bool:
    return {"on": True, "off": False}[value]


def _per_point(fn, xs: torch.Tensor):
    """``fn(scalar tensor) -> scalar loss`` at each point, and its autograd derivative."""
    loss, grad = [], []
    for x in xs.tolist():
        v = torch.tensor(x, dtype=f64, requires_grad=True)
        out = fn(v)
        (g,) = torch.autograd.grad(out, v)
        loss.append(out.item())
        grad.append(g.item())
    return np.array(loss), np.array(grad)


def _loss_and_gradient_panels(fns: dict, xs: torch.Tensor, grad_title: str) -> dict:
    """``{("loss", label): curve, (grad_title, label): curve}`` for each ``fns[label]``."""
    out = {}
    for label, fn in fns.items():
        value, grad = _per_point(fn, xs)
        out[("loss", label)] = (xs.numpy(), value)
        out[(grad_title, label)] = (xs.numpy(), grad)
    return out


# --- probabilistic ------------------------------------------------------------------------------

def nll_batch(values: dict[str, str]) -> dict:
    form = values["input to nll_loss"].split(",")[0]
    w0 = float(values["weight of class 0"])
    reduction = values["reduction"]
    base = torch.tensor([[0.0, 1.0, -0.5, 0.5], [2.0, 0.0, 0.5, -1.0], [0.0, -1.0, 1.5, 0.5]],
                        dtype=f64)
    weight = torch.tensor([w0, 1.0, 1.0, 1.0], dtype=f64)
    convert = {"log_softmax(z)": lambda z: z.log_softmax(1), "softmax(z)": lambda z: z.softmax(1),
               "raw logits z": lambda z: z}[form]

    def loss(z0):
        z = torch.cat([z0.reshape(1, 1), base[:1, 1:]], dim=1)
        z = torch.cat([z, base[1:]])
        return F.nll_loss(convert(z), torch.tensor([0, 0, 2]), weight=weight, reduction=reduction)

    xs = torch.linspace(-6.0, 6.0, 121, dtype=f64)
    value, grad = _per_point(loss, xs)
    return {("NLL of the batch", "nll_loss(input, target)"): (xs.numpy(), value),
            ("gradient in that logit (autograd)", "autograd"): (xs.numpy(), grad)}


def poisson_rate(values: dict[str, str]) -> dict:
    y = float(values["observed count y"])
    log_input = _on(values["log_input (input is log λ)"])
    full = _on(values["full (add Stirling's log y!)"])
    rates = torch.linspace(0.1, 10.0, 100, dtype=f64)

    def loss(rate):
        inp = rate.log() if log_input else rate
        return F.poisson_nll_loss(inp, torch.tensor(y, dtype=f64), log_input=log_input, full=full)

    # The gradient in the input: for a log-rate input, d/dθ = λ d/dλ.
    value, grad_rate = _per_point(loss, rates)
    grad = grad_rate * rates.numpy() if log_input else grad_rate
    analytic = (rates - y).numpy() if log_input else (1 - y / (rates + 1e-8)).numpy()
    best = rates[int((rates - max(y, 0.1)).abs().argmin())].reshape(1)
    return {
        ("Poisson NLL against the rate", "PoissonNLLLoss"): (rates.numpy(), value),
        ("Poisson NLL against the rate", "λ = y (the minimum)"): (
            best.numpy(), np.array([loss(best[0]).item()])),
        ("gradient in the input (autograd)", "autograd"): (rates.numpy(), grad),
        ("gradient in the input (autograd)", "exp(θ) − y, or 1 − y / λ"): (rates.numpy(), analytic),
    }


def gaussian_variance(values: dict[str, str]) -> dict:
    e = float(values["error |input − target|"])
    eps = float(values["eps (variance clamp)"].split()[0])
    full = _on(values["full (add log(2π) / 2)"])
    var = torch.linspace(0.02, 4.0, 200, dtype=f64)

    def loss(v):
        return F.gaussian_nll_loss(torch.tensor([e], dtype=f64), torch.zeros(1, dtype=f64),
                                   v.reshape(1), full=full, eps=eps)

    value, grad = _per_point(loss, var)
    best = max(e * e, eps, 0.02)
    return {
        ("Gaussian NLL against the variance", "GaussianNLLLoss"): (var.numpy(), value),
        ("Gaussian NLL against the variance", "σ² = max(e², eps)"): (
            np.array([best]), np.array([loss(torch.tensor(best, dtype=f64)).item()])),
        ("gradient in the variance (autograd)", "autograd"): (var.numpy(), grad),
    }


# --- margins ------------------------------------------------------------------------------------

def margin_pairs(values: dict[str, str]) -> dict:
    margin = float(values["margin"])
    y = torch.tensor(1.0 if _on(values["y = +1 (off: y = −1)"]) else -1.0, dtype=f64)
    xs = torch.linspace(-3.0, 3.0, 121, dtype=f64)
    zero = torch.tensor(0.0, dtype=f64)
    fns = {
        "MarginRankingLoss (x1 − x2 = x)": lambda x: F.margin_ranking_loss(
            x.reshape(1), zero.reshape(1), y.reshape(1), margin=margin),
        "SoftMarginLoss": lambda x: F.soft_margin_loss(x.reshape(1), y.reshape(1)),
        "HingeEmbeddingLoss (x a distance)": lambda x: F.hinge_embedding_loss(
            x.reshape(1), y.reshape(1), margin=margin),
    }
    return _loss_and_gradient_panels(fns, xs, "gradient (autograd)")


def multi_margin(values: dict[str, str]) -> dict:
    p = int(values["p"])
    margin = float(values["margin"])
    weight = torch.tensor([float(values["weight of the true class"]), 1, 1, 1], dtype=f64)
    others = torch.tensor([1.0, 0.0, -0.5], dtype=f64)
    xs = torch.linspace(-3.0, 4.0, 141, dtype=f64)
    target = torch.tensor([0])
    fns = {
        "MultiMarginLoss": lambda x: F.multi_margin_loss(
            torch.cat([x.reshape(1), others])[None], target, p=p, margin=margin, weight=weight),
        "CrossEntropyLoss": lambda x: F.cross_entropy(torch.cat([x.reshape(1), others])[None],
                                                      target),
    }
    return _loss_and_gradient_panels(fns, xs, "gradient in that score (autograd)")


def multilabel_margins(values: dict[str, str]) -> dict:
    moved = int(values["moved label"].split()[-1])
    chosen = {"labels 0 and 2": [0, 2], "label 0 only": [0]}[values["true labels"]]
    base = torch.tensor([1.0, 0.5, 0.0, -0.5], dtype=f64)
    index_target = torch.tensor([chosen + [-1] * (4 - len(chosen))])
    multi_hot = torch.zeros(1, 4, dtype=f64)
    multi_hot[0, chosen] = 1.0
    xs = torch.linspace(-4.0, 4.0, 161, dtype=f64)

    def scores(x):
        onehot = F.one_hot(torch.tensor(moved), 4).to(f64)
        return (base * (1 - onehot) + x * onehot)[None]

    fns = {
        "MultiLabelMarginLoss (index targets)": lambda x: F.multilabel_margin_loss(
            scores(x), index_target),
        "MultiLabelSoftMarginLoss (multi-hot)": lambda x: F.multilabel_soft_margin_loss(
            scores(x), multi_hot),
        "BCEWithLogitsLoss, mean over labels": lambda x: F.binary_cross_entropy_with_logits(
            scores(x), multi_hot),
    }
    return _loss_and_gradient_panels(fns, xs, "gradient in that score (autograd)")


def triplet_circle(values: dict[str, str]) -> dict:
    cosine = values["distance function"].startswith("cosine")
    margin = float(values["margin"])
    swap = _on(values["swap"])
    anchor = torch.tensor([[1.0, 0.0]], dtype=f64)
    positive = torch.tensor([[math.cos(0.6), math.sin(0.6)]], dtype=f64)
    xs = torch.linspace(0.0, math.pi, 121, dtype=f64)

    def negative(theta):
        return torch.stack([theta.cos(), theta.sin()]).reshape(1, 2)

    def cos_distance(a, b):
        return 1 - F.cosine_similarity(a, b)

    fns = {
        "TripletMarginWithDistanceLoss": lambda t: F.triplet_margin_with_distance_loss(
            anchor, positive, negative(t), distance_function=cos_distance if cosine else None,
            margin=margin, swap=swap),
        "TripletMarginLoss (L2)": lambda t: nn.TripletMarginLoss(margin=margin, swap=swap)(
            anchor, positive, negative(t)),
    }
    return _loss_and_gradient_panels(fns, xs, "gradient in the angle (autograd)")


# --- sequences ----------------------------------------------------------------------------------

def ctc_frames(values: dict[str, str]) -> dict:
    letters = {"a": 1, "b": 2, "c": 3}
    target = torch.tensor([[letters[s] for s in values["target label"].split()]])
    bias = float(values["blank logit bias"])
    logits = 1.5 * torch.randn(10, 4, generator=torch.Generator().manual_seed(3), dtype=f64)
    blank = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=f64)

    def ctc(b, z=None):
        z = logits + b * blank if z is None else z
        return F.ctc_loss(z.log_softmax(1)[:, None], target, [10], [target.shape[1]],
                          reduction="sum")

    z = (logits + bias * blank).requires_grad_(True)
    (g,) = torch.autograd.grad(ctc(0.0, z), z)
    probs = z.detach().softmax(1)
    posterior = probs - g
    frames = np.arange(10.0)
    grid = torch.linspace(-3.0, 4.0, 71, dtype=f64)
    value, grad = _per_point(ctc, grid)
    now, now_grad = _per_point(ctc, torch.tensor([bias], dtype=f64))
    out = {
        ("CTC loss against the blank bias", "CTCLoss"): (grid.numpy(), value),
        ("CTC loss against the blank bias", "current bias"): (np.array([bias]), now),
        ("gradient in the blank bias (autograd)", "autograd"): (grid.numpy(), grad),
        ("gradient in the blank bias (autograd)", "current bias"): (np.array([bias]), now_grad),
    }
    for k, name in enumerate(["blank", "a", "b", "c"]):
        out[("alignment posterior per frame (from autograd)", name)] = (
            frames, posterior[:, k].numpy())
        out[("the model's softmax per frame", name)] = (frames, probs[:, k].numpy())
    return out


def adaptive_terms(values: dict[str, str]) -> dict:
    target = int(values["target class"].split()[1])
    div_value = float(values["div_value"])
    torch.manual_seed(0)
    module = nn.AdaptiveLogSoftmaxWithLoss(16, 40, [8, 20], div_value=div_value).double()
    gen = torch.Generator().manual_seed(1)
    h0 = torch.randn(16, generator=gen, dtype=f64)
    d = torch.randn(16, generator=gen, dtype=f64)
    d = 3.0 * d / d.norm()
    head_index = target if target < 8 else (8 if target < 20 else 9)
    xs = torch.linspace(-4.0, 4.0, 81, dtype=f64)
    loss, grad = _per_point(lambda s: -module.log_prob((h0 + s * d)[None])[0, target], xs)
    with torch.no_grad():
        head = -module.head(h0 + xs[:, None] * d).log_softmax(1)[:, head_index].numpy()
    return {
        ("loss and its two terms", "loss −log p(y)"): (xs.numpy(), loss),
        ("loss and its two terms", "head term"): (xs.numpy(), head),
        ("loss and its two terms", "within-cluster term"): (xs.numpy(), loss - head),
        ("gradient (autograd)", "autograd"): (xs.numpy(), grad),
    }


# --- the reference page ---------------------------------------------------------------------------

def every_loss(values: dict[str, str]) -> dict:
    """The catalog example of the chosen loss, through its functional form, as the first
    input element moves; loss and gradient scaled so the loss spans [0, 1]."""
    from losslab.losses import catalog

    entry = catalog.CATALOG[values["loss"]]
    xs = torch.linspace(-3.0, 3.0, 41, dtype=f64)
    functional, formula, grad = [], [], []
    for x in xs.tolist():
        shift = torch.tensor(x, dtype=f64, requires_grad=True)
        ways = entry.example(shift)
        (g,) = torch.autograd.grad(ways["functional"], shift)
        functional.append(ways["functional"].item())
        formula.append(ways["formula"].item())
        grad.append(g.item())
    functional, formula, grad = map(np.array, (functional, formula, grad))
    lo, span = functional.min(), np.ptp(functional)
    panel = "loss along one input, rescaled to [0, 1]"
    return {(panel, "nn module"): (xs.numpy(), (functional - lo) / span),
            (panel, "course formula"): (xs.numpy(), (formula - lo) / span),
            ("its gradient (autograd), same scale", "autograd"): (xs.numpy(), grad / span)}


# --- contrastive, dense prediction, preference ------------------------------------------------

def infonce_temperature(values: dict[str, str]) -> dict:
    """An anchor with its positive at similarity 0.6, one moving negative and N - 2 others
    (tanh of 0.5 × a seeded normal draw), and a batch of 16 spread from −0.5 to 0.55."""
    tau = float(values["temperature τ"])
    n = int(values["batch size N"])
    others = torch.tanh(0.5 * torch.randn(510, generator=torch.Generator().manual_seed(0),
                                          dtype=f64))[: n - 2]
    xs = torch.linspace(-1.0, 1.0, 101, dtype=f64)

    def logits(s):
        return torch.cat([torch.tensor([0.6], dtype=f64), s.reshape(1), others]) / tau

    value, grad = _per_point(lambda s: F.cross_entropy(logits(s)[None], torch.tensor([0])), xs)
    weight = np.array([logits(s).softmax(0)[1].item() / tau for s in xs])
    spread = torch.linspace(-0.5, 0.55, 15, dtype=f64, requires_grad=True)
    batch = torch.cat([torch.tensor([0.6], dtype=f64), spread]) / tau
    (g,) = torch.autograd.grad(F.cross_entropy(batch[None], torch.tensor([0])), spread)
    return {
        ("InfoNCE loss against one negative's similarity", "InfoNCE"): (xs.numpy(), value),
        ("gradient in that similarity (autograd)", "autograd"): (xs.numpy(), grad),
        ("gradient in that similarity (autograd)", "softmax weight / τ"): (xs.numpy(), weight),
        ("share of the push on each of 15 negatives", "negatives (batch of 16)"): (
            spread.detach().numpy(), (g / g.sum()).numpy()),
    }


def dense_object_size(values: dict[str, str]) -> dict:
    """A 16 × 16 image; foreground logit z on a square from pixel 3 (2 × 2 or 8 × 8) and −5
    elsewhere; the target is that square, or empty. Dice on the foreground channel."""
    side = {"small": 2, "large": 8, "no": 0}[values["object in the target"].split()[0]]
    smooth = float(values["Dice smoothing (smooth_nr = smooth_dr)"])
    square = torch.zeros(16, 16, dtype=torch.bool)
    square[3:3 + (side or 2), 3:3 + (side or 2)] = True
    target = (square if side else torch.zeros_like(square)).long()

    def logits(z):
        fg = torch.where(square, z, torch.tensor(-5.0, dtype=f64))
        return torch.stack([torch.zeros_like(fg), fg])[None]

    def ce(z):
        return F.cross_entropy(logits(z), target[None])

    def dice(z):
        p = torch.sigmoid(logits(z)[0, 1] - logits(z)[0, 0])
        g = target.to(f64)
        return 1 - (2 * (p * g).sum() + smooth) / (p.sum() + g.sum() + smooth)

    xs = torch.linspace(-6.0, 6.0, 121, dtype=f64)
    fns = {"cross-entropy (mean over pixels)": ce, "soft Dice (foreground)": dice,
           "CE + Dice": lambda z: ce(z) + dice(z)}
    out = {}
    for label, fn in fns.items():
        value, grad = _per_point(fn, xs)
        out[("loss against the logit on the region", label)] = (xs.numpy(), value)
        out[("gradient in that logit (autograd)", label)] = (xs.numpy(), grad)
    return out


def dpo_margin(values: dict[str, str]) -> dict:
    beta = float(values["β"])
    eps = float(values["label smoothing ε"])
    xs = torch.linspace(-60.0, 60.0, 481, dtype=f64)

    def dpo(m):
        return -(1 - eps) * F.logsigmoid(beta * m) - eps * F.logsigmoid(-beta * m)

    value, grad = _per_point(dpo, xs)
    bce = F.binary_cross_entropy_with_logits(beta * xs, torch.full_like(xs, 1 - eps),
                                             reduction="none")
    analytic = beta * (torch.sigmoid(beta * xs) - 1 + eps)
    return {
        ("DPO loss against the margin", "DPO −log σ(β m)"): (xs.numpy(), value),
        ("DPO loss against the margin", "BCE with logits on β m, target 1 − ε"): (
            xs.numpy(), bce.numpy()),
        ("gradient in the margin (autograd)", "autograd"): (xs.numpy(), grad),
        ("gradient in the margin (autograd)", "β (σ(β m) − 1 + ε)"): (xs.numpy(),
                                                                     analytic.numpy()),
    }


NEW_CHAPTER_EXPECTED = {
    "NLLLoss of a batch against one logit": nll_batch,
    "Poisson NLL against the predicted rate": poisson_rate,
    "Gaussian NLL: error against predicted variance": gaussian_variance,
    "Margin losses for one score and a ±1 target": margin_pairs,
    "MultiMarginLoss against the true class's score": multi_margin,
    "Multi-label margin losses against one label's score": multilabel_margins,
    "Triplet loss with a distance function, negative on the unit circle": triplet_circle,
    "What CTC adds up, frame by frame": ctc_frames,
    "Adaptive softmax: head term and cluster term": adaptive_terms,
    "Every loss of torch.nn along one input": every_loss,
    "InfoNCE: temperature, hard negatives and batch size": infonce_temperature,
    "Cross-entropy and Dice on a small, a large and an empty mask": dense_object_size,
    "DPO loss and its gradient against the log-ratio margin": dpo_margin,
}
