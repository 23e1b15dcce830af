"""Sequence and large-vocabulary losses written out: CTC's forward recursion, and the
adaptive softmax's two-level log-probability."""

from __future__ import annotations

import torch
import torch.nn as nn


def extended_label(target: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """The label with a blank before, between and after its symbols: length 2S + 1."""
    ext = torch.full((2 * len(target) + 1,), blank, dtype=torch.long)
    ext[1::2] = target
    return ext


def ctc_log_alpha(log_probs: torch.Tensor, target: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """CTC's forward variables in log space, ``(T, 2S + 1)``, for one sequence.

    ``log_probs`` is float (T, C) log-probabilities, ``target`` long (S,) without blanks.
    ``alpha[t, s]`` is the log of the summed probability of every path through the first
    t + 1 frames that ends on position s of the extended label. A path may stay on a
    position, step to the next one, or skip a blank between two different symbols.
    """
    ext = extended_label(target, blank)
    length = len(ext)
    neg_inf = torch.tensor(float("-inf"), dtype=log_probs.dtype)
    can_skip = torch.zeros(length, dtype=torch.bool)
    can_skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    first = torch.full((length,), float("-inf"), dtype=log_probs.dtype)
    first[0] = log_probs[0, ext[0]]
    if length > 1:
        first[1] = log_probs[0, ext[1]]
    rows = [first]
    for t in range(1, log_probs.shape[0]):
        prev = rows[-1]
        step = torch.cat([neg_inf.reshape(1), prev[:-1]])
        skip = torch.cat([neg_inf.expand(2), prev[:-2]])
        skip = torch.where(can_skip, skip, neg_inf)
        rows.append(torch.logsumexp(torch.stack([prev, step, skip]), dim=0) + log_probs[t, ext])
    return torch.stack(rows)


def ctc_formula(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths, target_lengths,
                blank: int = 0, reduction: str = "mean",
                zero_infinity: bool = False) -> torch.Tensor:
    """CTC loss: ``-log`` of the summed probability of every alignment of each target.

    ``log_probs`` float (T, N, C) log-probabilities; ``targets`` long (N, S) padded (only the
    first ``target_lengths[n]`` entries count); lengths are sequences of N ints. ``"mean"``
    divides each loss by its target length, then averages over the batch. An impossible
    alignment gives ``inf``, or 0 with ``zero_infinity``.
    """
    losses = []
    for n in range(log_probs.shape[1]):
        t_len, s_len = int(input_lengths[n]), int(target_lengths[n])
        alpha = ctc_log_alpha(log_probs[:t_len, n], targets[n, :s_len], blank)
        losses.append(-torch.logsumexp(alpha[-1, -2:] if s_len else alpha[-1, -1:], dim=0))
    loss = torch.stack(losses)
    if zero_infinity:
        loss = torch.where(torch.isinf(loss), torch.zeros_like(loss), loss)
    if reduction == "mean":
        lengths = torch.as_tensor(target_lengths, dtype=loss.dtype).clamp(min=1)
        return (loss / lengths).mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def ctc_symbol_posteriors(logits: torch.Tensor, target: torch.Tensor,
                          blank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, posterior)`` for one sequence of logits (T, C) and its target (S,).

    ``posterior[t, c]`` is the share of all valid alignments' probability that emits
    symbol c at frame t: what the loss adds up, frame by frame. It comes from autograd:
    CTC's gradient in the logits is ``softmax(logits) - posterior``.
    """
    logits = logits.detach().clone().requires_grad_(True)
    log_probs = logits.log_softmax(dim=-1)
    loss = torch.nn.functional.ctc_loss(
        log_probs.unsqueeze(1), target.unsqueeze(0), [logits.shape[0]], [len(target)],
        blank=blank, reduction="sum")
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), (log_probs.detach().exp() - grad)


def adaptive_log_prob(module: nn.AdaptiveLogSoftmaxWithLoss, input: torch.Tensor,
                      target: torch.Tensor) -> torch.Tensor:
    """The log-probability an ``AdaptiveLogSoftmaxWithLoss`` gives each target, written out.

    ``input`` float (N, in_features), ``target`` long (N,). A frequent class (below the first
    cutoff) is scored by the head alone; a rare class in cluster i by the head's score for
    the cluster plus its log-probability within the cluster, from a smaller projection.
    """
    head = module.head(input).log_softmax(dim=1)
    shortlist = module.shortlist_size
    out = torch.empty(len(target), dtype=input.dtype)
    for n, c in enumerate(target.tolist()):
        if c < shortlist:
            out[n] = head[n, c]
            continue
        i = next(k for k, hi in enumerate(module.cutoffs[1:]) if c < hi)
        within = module.tail[i](input[n:n + 1]).log_softmax(dim=1)[0, c - module.cutoffs[i]]
        out[n] = head[n, shortlist + i] + within
    return out


def adaptive_cost(in_features: int, cutoffs: list[int], n_classes: int,
                  div_value: float) -> int:
    """Multiply-adds of one adaptive-softmax forward over the whole vocabulary (no bias).

    The head maps to the shortlist plus one score per cluster; cluster i first projects to
    ``in_features // div_value**(i + 1)`` features, then to its classes.
    """
    edges = [*cutoffs, n_classes]
    cost = in_features * (edges[0] + len(cutoffs))
    for i in range(len(cutoffs)):
        hidden = int(in_features // div_value ** (i + 1))
        cost += in_features * hidden + hidden * (edges[i + 1] - edges[i])
    return cost


def adaptive_token_cost(in_features: int, cutoffs: list[int], n_classes: int,
                        div_value: float, target: int) -> int:
    """Multiply-adds the adaptive softmax spends in training on one token of class ``target``.

    Training scores only what the target's loss needs: the head (shortlist plus one score
    per cluster), and, for a word outside the head, its own cluster's projection and
    classes. A head word pays for the head alone. Bias terms are not counted.
    """
    edges = [*cutoffs, n_classes]
    if not 0 <= target < n_classes:
        raise ValueError(f"target must be a class index in [0, {n_classes}); got {target}")
    cost = in_features * (edges[0] + len(cutoffs))
    for i in range(len(cutoffs)):
        if edges[i] <= target < edges[i + 1]:
            hidden = int(in_features // div_value ** (i + 1))
            cost += in_features * hidden + hidden * (edges[i + 1] - edges[i])
    return cost
