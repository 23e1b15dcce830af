"""Classification loss math: binary, multi-class and multi-label, written out.

Tensors in, tensors out. Each written-out formula has a twin in ``torch.nn.functional``
that the tests hold it to; the chapters use these to show what PyTorch computes.
Logits are raw scores (any real number); probabilities are in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# --- binary ----------------------------------------------------------------------------------

def bce_naive(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy the fragile way: sigmoid first, then ``log``, per element.

    ``logits``, ``target``: float tensors of one shape; computed in their own dtype, so
    in float32 ``sigmoid`` rounds to exactly 0 or 1 and a ``log`` of 0 gives ``-inf``
    (and ``0 * -inf`` gives ``nan``). Returns the per-element loss.
    """
    probs = torch.sigmoid(logits)
    return -(target * torch.log(probs) + (1 - target) * torch.log(1 - probs))


def bce_stable(logits: torch.Tensor, target: torch.Tensor,
               pos_weight: torch.Tensor | float | None = None) -> torch.Tensor:
    """Binary cross-entropy from logits without overflow, per element.

    Uses ``-log sigmoid(z) = max(-z, 0) + log(1 + exp(-|z|))`` (a softplus), whose
    ``exp`` never sees a positive argument. Without ``pos_weight`` this is
    ``max(z, 0) - z*y + log(1 + exp(-|z|))``; with it the positive term is scaled:
    ``(1 - y) z + (1 + (pos_weight - 1) y) softplus(-z)``. ``pos_weight`` broadcasts
    over the last dimension (one weight per label). Returns the per-element loss.
    """
    softplus_neg = torch.clamp(-logits, min=0) + torch.log1p(torch.exp(-logits.abs()))
    if pos_weight is None:
        return (1 - target) * logits + softplus_neg
    pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return (1 - target) * logits + (1 + (pos_weight - 1) * target) * softplus_neg


def bce_logits_grad(logits: torch.Tensor, target: torch.Tensor,
                    pos_weight: torch.Tensor | float | None = None) -> torch.Tensor:
    """d/d logits of :func:`bce_stable`: ``sigmoid(z) - y`` (positives scaled by pos_weight).

    With ``pos_weight`` w: ``w y (sigmoid(z) - 1) + (1 - y) sigmoid(z)``.
    """
    probs = torch.sigmoid(logits)
    if pos_weight is None:
        return probs - target
    pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return pos_weight * target * (probs - 1) + (1 - target) * probs


def balanced_pos_weight(target: torch.Tensor) -> torch.Tensor:
    """``pos_weight`` that balances positives and negatives: negatives / positives per label.

    ``target``: multi-hot float tensor (N,) or (N, L). Returns shape () or (L,).
    """
    pos = target.sum(dim=0)
    neg = target.shape[0] - pos
    return neg / pos.clamp(min=1)


# --- multi-class -----------------------------------------------------------------------------

def log_softmax_formula(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``z - logsumexp(z)`` with the maximum subtracted first, so ``exp`` cannot overflow."""
    top = logits.amax(dim=dim, keepdim=True)
    shifted = logits - top
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def softmax_naive(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax as ``exp(z) / sum exp(z)`` with no shift: overflows to ``inf / inf = nan``."""
    e = torch.exp(logits)
    return e / e.sum(dim=dim, keepdim=True)


def cross_entropy_formula(logits: torch.Tensor, target: torch.Tensor,
                          label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy per sample for logits (N, C) and class indices (N,) (int64).

    ``logsumexp(z) - z[target]`` when ``label_smoothing`` is 0; otherwise the cross-entropy
    against the smoothed target ``(1 - eps) onehot + eps / C``. Returns shape (N,).
    """
    num_classes = logits.shape[-1]
    soft = smoothed_targets(target, num_classes, label_smoothing).to(logits.dtype)
    return -(soft * log_softmax_formula(logits)).sum(dim=-1)


def smoothed_targets(target: torch.Tensor, num_classes: int, eps: float) -> torch.Tensor:
    """The class probabilities label smoothing trains towards: ``(1 - eps) onehot + eps / C``."""
    onehot = F.one_hot(target, num_classes).to(torch.float64)
    return (1 - eps) * onehot + eps / num_classes


def cross_entropy_grad(logits: torch.Tensor, target: torch.Tensor,
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """d/d logits of :func:`cross_entropy_formula` per sample: ``softmax(z) - q``.

    ``q`` is the one-hot target, or the smoothed one. Returns shape (N, C).
    """
    soft = smoothed_targets(target, logits.shape[-1], label_smoothing).to(logits.dtype)
    return torch.softmax(logits, dim=-1) - soft


def softmax_before_ce_floor(num_classes: int) -> float:
    """Lowest loss ``CrossEntropyLoss`` can give when it is fed probabilities, not logits.

    The best probabilities are one-hot, and log-softmax of a one-hot vector over C classes
    gives ``1 - log(e + C - 1)`` at the target, so the loss is ``log(1 + (C - 1) / e)``.
    """
    return math.log1p((num_classes - 1) / math.e)


def temperature_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(z / T)``: T > 1 flattens the distribution, T < 1 sharpens it."""
    return torch.softmax(logits / temperature, dim=-1)


def smoothing_best_margin(num_classes: int, eps: float) -> float:
    """Logit margin of the target over the other (equal) logits that minimises label-smoothed CE.

    The loss is smallest when softmax equals the smoothed target, so the margin is
    ``log((1 - eps + eps / C) / (eps / C))``; infinite when ``eps`` is 0.
    """
    if eps == 0:
        return math.inf
    return math.log((1 - eps + eps / num_classes) / (eps / num_classes))


# --- multi-label -----------------------------------------------------------------------------

def multilabel_predict(logits: torch.Tensor, thresholds: torch.Tensor | float = 0.5
                       ) -> torch.Tensor:
    """Multi-hot predictions: label l is on when ``sigmoid(z_l) >= threshold_l``.

    ``logits``: (N, L) float; ``thresholds``: a float or (L,) tensor. Returns (N, L) bool.
    """
    return torch.sigmoid(logits) >= torch.as_tensor(thresholds, dtype=logits.dtype)


# --- mixed precision -------------------------------------------------------------------------

def call_cuda_autocast_kernel(op_name: str, *args: torch.Tensor) -> torch.Tensor:
    """Call the kernel PyTorch registers for ``aten::<op_name>`` under CUDA autocast.

    Works on a CPU-only build: the AutocastCUDA kernels are compiled into every build, and
    this calls one directly (``OpOverload.redispatch``), so a chapter can show what CUDA
    autocast does with an op without a GPU. On CPU tensors the kernel casts nothing (its
    casts apply to CUDA tensors only); a refusal, as for ``binary_cross_entropy``, is raised
    all the same. Returns the op's result.
    """
    if not torch._C._dispatch_has_kernel_for_dispatch_key(f"aten::{op_name}", "AutocastCUDA"):
        raise ValueError(f"aten::{op_name} has no CUDA autocast kernel")
    op = getattr(torch.ops.aten, op_name).default
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCUDA)
    return op.redispatch(keys, *args)


def weighted_cross_entropy_formula(logits: torch.Tensor, target: torch.Tensor,
                                   weight: torch.Tensor, label_smoothing: float = 0.0
                                   ) -> torch.Tensor:
    """``F.cross_entropy(logits, target, weight=weight, label_smoothing=...)``, written out.

    ``logits``: (N, C) float; ``target``: (N,) long class indices or (N, C) float
    probabilities; ``weight``: (C,). Returns the mean as PyTorch takes it: with index
    targets both the NLL and the smoothing term are divided by ``sum_i weight[target_i]``;
    with probability targets each row's loss ``-sum_k w_k q_k log p_k`` is divided by N.
    """
    log_probs = F.log_softmax(logits, dim=1)
    num_classes = logits.shape[1]
    if target.dtype == torch.long:
        nll = -log_probs.gather(1, target[:, None])[:, 0] * weight[target]
        smooth = -(log_probs * weight).sum(dim=1) / num_classes
        per_example = (1 - label_smoothing) * nll + label_smoothing * smooth
        return per_example.sum() / weight[target].sum()
    q = (1 - label_smoothing) * target + label_smoothing / num_classes
    return -(q * weight * log_probs).sum(dim=1).mean()


def accumulated_token_mean(logits_chunks, target_chunks, ignore_index: int = -100
                           ) -> torch.Tensor:
    """Cross-entropy over several micro-batches as one mean over every real token.

    Each micro-batch's loss is summed over its tokens (``reduction="sum"``) and divided by
    the number of non-ignored tokens in *all* micro-batches together, so accumulating the
    micro-batches' gradients gives exactly the gradient of the full batch's token mean.
    ``logits_chunks``: (N_k, C, L) float tensors; ``target_chunks``: (N_k, L) long.
    Returns the total loss, a scalar.
    """
    tokens = sum(int((t != ignore_index).sum()) for t in target_chunks)
    return sum(F.cross_entropy(z, t, ignore_index=ignore_index, reduction="sum") / tokens
               for z, t in zip(logits_chunks, target_chunks))
