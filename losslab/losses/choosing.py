"""Choosing a loss: the decision guide, ``choose_loss``, and a gallery of common mistakes.

``GUIDE`` is the one table both the chapter's decision guide and ``choose_loss`` read, so
the two cannot disagree. Each entry of ``MISTAKES`` runs its mistake, checks that PyTorch
still shows the symptom the course describes (``claims.ClaimFailed`` otherwise) and
reports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import beyond, claims, contrastive, dense, preference


@dataclass(frozen=True)
class Task:
    """One row of the decision guide."""

    name: str
    output: str
    target: str
    loss: str
    example: str
    reason: str
    #: The chapter that teaches it, where it has one of its own (``chapters/<name>``).
    chapter: str = ""


GUIDE: dict[str, Task] = {t.name: t for t in [
    Task("regression", "linear, no activation", "float (N,) or (N, D)", "nn.MSELoss()",
         "house price", "squared error is smooth and estimates the mean"),
    Task("regression with outliers", "linear, no activation", "float (N,) or (N, D)",
         "nn.HuberLoss(delta)", "sensor readings with glitches",
         "quadratic near 0, linear beyond delta: outliers pull with a capped force"),
    Task("binary", "1 logit, no sigmoid", "float 0/1, same shape as the logits",
         "nn.BCEWithLogitsLoss(pos_weight=...)", "spam or not",
         "sigmoid and log computed together from the logit: stable"),
    Task("multi-class", "C logits, no softmax", "long class indices (N,)",
         "nn.CrossEntropyLoss(weight=..., label_smoothing=...)", "digit 0-9",
         "log-softmax then NLL, stable; exactly one class is true"),
    Task("multi-label", "L logits, no sigmoid", "float multi-hot (N, L)",
         "nn.BCEWithLogitsLoss(pos_weight=(L,))", "tags of a photo",
         "one independent yes/no per label; labels do not compete"),
    Task("sequence with padding", "logits (N, C, L)", "long (N, L), padding = -100",
         "nn.CrossEntropyLoss(ignore_index=-100)", "next-token prediction",
         "padded positions are left out of the loss and the mean"),
    Task("distillation", "student logits (N, C)", "teacher logits (N, C)",
         "T² · kl_div(log_softmax(s/T), softmax(t/T), 'batchmean')", "compress a big model",
         "matches the teacher's softened distribution; T² keeps the gradient scale"),
    Task("imbalanced detection", "logits, no sigmoid", "float 0/1",
         "sigmoid focal loss (alpha, gamma)", "object vs background boxes",
         "down-weights the many easy examples so the hard ones count"),
    Task("embedding", "embedding vectors (N, D)", "anchor, positive, negative",
         "nn.TripletMarginLoss(margin)", "face verification",
         "learns distances: same identity closer than different by a margin"),
    Task("counts", "1 value, the log-rate (no activation)", "float counts, same shape",
         "nn.PoissonNLLLoss(log_input=True)", "calls per hour",
         "Poisson likelihood: the loss is smallest where the predicted rate equals the count"),
    Task("regression with uncertainty", "mean and variance (softplus keeps it > 0)",
         "float (N, D)", "nn.GaussianNLLLoss()", "forecast with error bars",
         "Gaussian likelihood: the model learns a variance per input, large where it errs"),
    Task("pairwise ranking", "one score per item", "float ±1 per pair (N,)",
         "nn.MarginRankingLoss(margin=1.0)", "order search results",
         "asks the preferred item's score to lead by the margin, then stops"),
    Task("sequence without alignment", "log_softmax over C classes + blank, (T, N, C)",
         "long labels (N, S) and their lengths", "nn.CTCLoss(blank=0)", "speech to text",
         "sums over every alignment of the label to the frames; none needs to be given"),
    Task("contrastive pairs", "embeddings (N, D) of two views", "none: pair i matches pair i",
         "InfoNCE: contrastive.InfoNCELoss(temperature=0.1)", "image-caption retrieval",
         "classifies each view's partner among the batch; the other pairs are its negatives",
         "chapters/contrastive"),
    Task("segmentation", "logits (N, C, H, W), no softmax", "long (N, H, W), void = ignore_index",
         "dense.CEDiceLoss(weight=...)", "tumour masks in scans",
         "cross-entropy teaches every pixel; Dice keeps small structures in view",
         "chapters/dense"),
    Task("preference pairs", "log-probabilities of chosen and rejected responses (N,)",
         "the same from a frozen reference model", "preference.DPOLoss(beta=0.1)",
         "tune a chat model on human preferences",
         "logistic loss on the log-ratio margin: no reward model, no RL loop",
         "chapters/preference"),
    Task("calibrated probabilities", "C logits, no softmax; then logits / T",
         "long class indices (N,)", "nn.CrossEntropyLoss(), then a temperature fitted by NLL",
         "risk scores read as probabilities",
         "no pos_weight or class weights (they move the probabilities); T from held-out data",
         "chapters/calibration"),
]}


@dataclass
class LossChoice:
    """What ``choose_loss`` returns: a configured loss module and why."""

    task: str
    loss: nn.Module
    output: str
    target: str
    reason: str
    chapter: str = ""


def choose_loss(task: str, *, num_classes: int | None = None, positive_rate=None,
                class_weight: torch.Tensor | None = None, ignore_index: int = -100,
                delta: float = 1.0, temperature: float = 2.0) -> LossChoice:
    """A configured loss for a task named in ``GUIDE``, with the output layer and target it needs.

    ``positive_rate``: for "binary" and "multi-label", the share of positives (a float, or a
    (L,) tensor per label); it sets ``pos_weight = (1 - rate) / rate``. ``class_weight``:
    (C,) float for "multi-class" and "segmentation". ``chapter`` of the result names the
    chapter that teaches the loss, where it has one of its own. Raises ``ValueError`` for an
    unknown task, listing them.
    """
    if task not in GUIDE:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(GUIDE)}")
    row = GUIDE[task]
    pos_weight = None
    if positive_rate is not None:
        rate = torch.as_tensor(positive_rate, dtype=torch.float32)
        if ((rate <= 0) | (rate >= 1)).any():
            raise ValueError(f"positive_rate must lie strictly between 0 and 1; got {rate}")
        pos_weight = (1 - rate) / rate
    builders: dict[str, Callable[[], nn.Module]] = {
        "regression": nn.MSELoss,
        "regression with outliers": lambda: nn.HuberLoss(delta=delta),
        "binary": lambda: nn.BCEWithLogitsLoss(pos_weight=pos_weight),
        "multi-class": lambda: nn.CrossEntropyLoss(weight=class_weight),
        "multi-label": lambda: nn.BCEWithLogitsLoss(pos_weight=pos_weight),
        "sequence with padding": lambda: nn.CrossEntropyLoss(ignore_index=ignore_index),
        "distillation": lambda: beyond.DistillationLoss(temperature=temperature),
        "imbalanced detection": lambda: beyond.FocalLoss(alpha=0.25, gamma=2.0),
        "embedding": lambda: nn.TripletMarginLoss(margin=1.0),
        "counts": lambda: nn.PoissonNLLLoss(log_input=True),
        "regression with uncertainty": nn.GaussianNLLLoss,
        "pairwise ranking": lambda: nn.MarginRankingLoss(margin=1.0),
        "sequence without alignment": lambda: nn.CTCLoss(blank=0),
        "contrastive pairs": lambda: contrastive.InfoNCELoss(temperature=0.1),
        "segmentation": lambda: dense.CEDiceLoss(weight=class_weight, ignore_index=ignore_index),
        "preference pairs": lambda: preference.DPOLoss(beta=0.1),
        "calibrated probabilities": nn.CrossEntropyLoss,
    }
    if task in ("multi-class", "segmentation") and class_weight is not None \
            and num_classes is not None and class_weight.shape != (num_classes,):
        raise ValueError(f"class_weight must have shape ({num_classes},); "
                         f"got {tuple(class_weight.shape)}")
    return LossChoice(task, builders[task](), row.output, row.target, row.reason, row.chapter)


# --- the gallery of mistakes -----------------------------------------------------------------

@dataclass(frozen=True)
class Mistake:
    """A common mistake: ``run`` makes it, asserts its symptom and returns it as text."""

    name: str
    fix: str
    run: Callable[[], str]


def _error_of(error: type[Exception], pattern: str, fn: Callable[[], object]) -> str:
    err = claims.raises(error, pattern, fn)
    return f"{type(err).__name__}: {str(err).splitlines()[0]}"


def _float_class_indices() -> str:
    return _error_of(RuntimeError, "expected target dtype to be Long",
                     lambda: F.cross_entropy(torch.randn(4, 3), torch.tensor([0.0, 2.0, 1.0, 1.0])))


def _shape_mismatch() -> str:
    claims.warns(UserWarning, "different to the input size", F.mse_loss, torch.zeros(8, 1),
                 torch.ones(8))
    mse = "MSE broadcasts to (8, 8) with a UserWarning"
    bce = _error_of(ValueError, "must be the same as input size",
                    lambda: F.binary_cross_entropy_with_logits(torch.zeros(8, 1), torch.ones(8)))
    return f"{mse}; BCE: {bce}"


def _softmax_before_ce() -> str:
    num_classes = 10
    onehot_probs = F.one_hot(torch.tensor([3]), num_classes).float()
    floor = claims.silent(F.cross_entropy, onehot_probs, torch.tensor([3])).item()
    claims.close(floor, math.log1p((num_classes - 1) / math.e), "the softmax-before-CE floor")
    return (f"no error; with {num_classes} classes the loss cannot go below {floor:.4f} "
            f"(= log(1 + {num_classes - 1}/e) = {math.log1p((num_classes - 1) / math.e):.4f})")


def _bce_on_logits() -> str:
    return _error_of(RuntimeError, "between 0 and 1",
                     lambda: F.binary_cross_entropy(torch.tensor([2.5, -1.0]),
                                                    torch.tensor([1.0, 0.0])))


def _sigmoid_then_bce() -> str:
    z = torch.tensor([40.0], requires_grad=True)
    loss = claims.silent(F.binary_cross_entropy, torch.sigmoid(z), torch.zeros(1))
    (g,) = torch.autograd.grad(loss, z)
    true = F.binary_cross_entropy_with_logits(z, torch.zeros(1))
    (true_g,) = torch.autograd.grad(true, z)
    claims.close(loss, 100.0, "BCELoss on a saturated sigmoid (the -100 clamp)")
    claims.close(g, 0.0, "the gradient through the saturated sigmoid")
    claims.close(true, 40.0, "the stable loss at logit 40", rtol=1e-6)
    return (f"no error; logit {z.item():.0f} with label 0 gives loss {loss.item():.0f} "
            f"(true value {true.item():.0f}) and gradient {g.item():.0f} "
            f"(true value {true_g.item():.0f})")


def _onehot_long_to_ce() -> str:
    onehot = F.one_hot(torch.tensor([0, 2]), 3)
    return _error_of(RuntimeError, "Expected floating point type for target",
                     lambda: F.cross_entropy(torch.randn(2, 3), onehot))


def _forgot_ignore_index() -> str:
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 8)
    target = torch.tensor([[2, 4, 1, 0, 0, 0, 0, 0]])  # 0 pads the sequence
    counted = claims.silent(F.cross_entropy, logits, target).item()
    ignored = F.cross_entropy(logits, target, ignore_index=0).item()
    pads = int((target == 0).sum())
    claims.differs(counted, ignored, "the loss with padding counted")
    return (f"no error; {pads} of {target.numel()} positions are padding and the loss is "
            f"{counted:.4f} "
            f"instead of {ignored:.4f}")


MISTAKES = [
    Mistake("float class indices to CrossEntropyLoss", "target.long()", _float_class_indices),
    Mistake("output (N, 1) against target (N,)", "output.squeeze(1)", _shape_mismatch),
    Mistake("softmax before CrossEntropyLoss", "pass logits; softmax only for inference",
            _softmax_before_ce),
    Mistake("logits into BCELoss", "BCEWithLogitsLoss on the logits", _bce_on_logits),
    Mistake("sigmoid then BCELoss", "BCEWithLogitsLoss on the logits", _sigmoid_then_bce),
    Mistake("one-hot long targets to CrossEntropyLoss", "target.argmax(1), or .float()",
            _onehot_long_to_ce),
    Mistake("forgetting ignore_index for padding", "ignore_index=<pad id>",
            _forgot_ignore_index),
]
