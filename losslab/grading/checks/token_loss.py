"""Checks for the token_loss assignment."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..probes.token_loss import PROBES, build_model
from . import Check, CheckFailed
from .expect import expect_close


def reference(logits, target, pad_index):
    """Cross-entropy summed over the real tokens of every sequence, divided by their count,
    in float64."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.double().reshape(-1, vocab), target.reshape(-1),
                           ignore_index=pad_index).to(logits.dtype)


def padded_targets(gen, batch, length, vocab, pad_index, min_real=1):
    """Targets with a random number of real tokens per sequence, then padding."""
    real = torch.randint(min_real, length + 1, (batch,), generator=gen)
    tokens = torch.randint(0, vocab, (batch, length), generator=gen)
    if 0 <= pad_index < vocab:
        tokens = torch.where(tokens == pad_index, (tokens + 1) % vocab, tokens)
    mask = torch.arange(length).unsqueeze(0) < real.unsqueeze(1)
    return torch.where(mask, tokens, torch.full_like(tokens, pad_index)), mask


def _describe(case):
    logits = case["logits"]
    real = int((case["target"] != case["pad_index"]).sum())
    return (f"token_loss(logits of shape {tuple(logits.shape)}, {logits.dtype}, "
            f"{real} real tokens, pad_index={case['pad_index']})")


def _visible_case():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]],
                           [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0]]])
    target = torch.tensor([[1, 2, 0], [2, 0, 0]])
    return {"logits": logits, "target": target, "pad_index": 0}


def _loss_inputs(gen):
    cases = [_visible_case()]
    for batch, length, vocab, pad_index, dtype in ((4, 7, 5, 0, torch.float32),
                                                   (3, 9, 11, -100, torch.float64),
                                                   (6, 4, 6, 5, torch.float32),
                                                   (2, 12, 8, 0, torch.float64)):
        target, _ = padded_targets(gen, batch, length, vocab, pad_index)
        logits = torch.randn(batch, length, vocab, generator=gen, dtype=torch.float64) * 2
        cases.append({"logits": logits.to(dtype), "target": target, "pad_index": pad_index})
    # The same batch with more padding appended, and random logits there: the loss is the
    # same number.
    base = cases[1]
    extra = torch.randn(4, 5, 5, generator=gen, dtype=torch.float64).to(base["logits"].dtype)
    cases.append({"logits": torch.cat([base["logits"], extra], dim=1) * 1,
                  "target": torch.cat([base["target"], torch.zeros(4, 5, dtype=torch.long)],
                                      dim=1), "pad_index": 0})
    # One sequence with no real token at all.
    target, _ = padded_targets(gen, 3, 6, 7, 0)
    target[1] = 0
    cases.append({"logits": torch.randn(3, 6, 7, generator=gen, dtype=torch.float64),
                  "target": target, "pad_index": 0})
    return {"cases": cases}


def _judge_loss(inputs, outputs):
    for i, case in enumerate(inputs["cases"]):
        expected = reference(case["logits"], case["target"], case["pad_index"])
        expect_close(outputs[str(i)], expected, _describe(case), device=outputs["__device__"],
                     hidden=i > 0)


# --- accumulation over micro-batches ---------------------------------------------------------

def _weights(gen, vocab, dim, dtype):
    return {"embedding": torch.randn(vocab, dim, generator=gen, dtype=torch.float64).to(dtype),
            "linear_weight": (torch.randn(vocab, dim, generator=gen, dtype=torch.float64)
                              * 0.5).to(dtype),
            "linear_bias": (torch.randn(vocab, generator=gen, dtype=torch.float64)
                            * 0.1).to(dtype)}


def _micro_batches(gen, vocab, pad_index, shapes):
    inputs, targets = [], []
    for batch, length in shapes:
        target, mask = padded_targets(gen, batch, length, vocab, pad_index)
        tokens = torch.randint(0, vocab, (batch, length), generator=gen)
        inputs.append(torch.where(mask, tokens, torch.zeros_like(tokens)))
        targets.append(target)
    return inputs, targets


def _accumulate_case(gen, vocab, dim, dtype, pad_index, shapes):
    inputs, targets = _micro_batches(gen, vocab, pad_index, shapes)
    return {"weights": _weights(gen, vocab, dim, dtype), "inputs": inputs, "targets": targets,
            "pad_index": pad_index}


def _accumulate_inputs(gen):
    # Micro-batches of different sizes, lengths and padding: a mean per micro-batch weighs
    # their tokens unequally.
    return {"cases": [
        _accumulate_case(gen, 9, 4, torch.float64, 0, ((2, 8), (3, 3), (1, 10))),
        _accumulate_case(gen, 13, 5, torch.float64, -100, ((4, 5), (4, 12), (2, 6), (3, 2))),
        _accumulate_case(gen, 7, 3, torch.float32, 0, ((5, 4), (1, 9))),
    ]}


def _placement_inputs(gen):
    return {"cases": [
        _accumulate_case(gen, 6, 3, torch.float32, 0, ((2, 5), (3, 2))),
        _accumulate_case(gen, 6, 3, torch.float64, -100, ((1, 7), (2, 3), (2, 4))),
    ]}


def _whole_batch(case):
    """The loss and gradients of every micro-batch's tokens at once, in float64."""
    model = build_model({k: v.double() for k, v in case["weights"].items()}, "cpu")
    logits = torch.cat([model(x).reshape(-1, model[1].out_features) for x in case["inputs"]])
    target = torch.cat([y.reshape(-1) for y in case["targets"]])
    loss = F.cross_entropy(logits, target, ignore_index=case["pad_index"])
    loss.backward()
    grads = {"embedding": model[0].weight.grad, "linear_weight": model[1].weight.grad,
             "linear_bias": model[1].bias.grad}
    return loss.detach(), grads


def _judge_accumulate(inputs, outputs, visible=0):
    device = outputs["__device__"]
    for i, case in enumerate(inputs["cases"]):
        dtype = case["weights"]["embedding"].dtype
        shapes = ", ".join(f"{tuple(x.shape)}" for x in case["inputs"])
        what = (f"accumulate_gradients over micro-batches of shapes {shapes}, {dtype}, "
                f"pad_index={case['pad_index']}")
        hidden = i >= visible
        rows = outputs[f"rows{i}"]
        most = max(x.shape[0] for x in case["inputs"])
        if not isinstance(rows, list) or not rows:
            raise CheckFailed(f"{what}: the model was never called")
        if any(type(r) is not int or r < 0 or r > most for r in rows):
            raise CheckFailed(f"{what}: run the model on one micro-batch at a time (it was "
                              f"called on more than {most} sequences at once)")
        loss, grads = _whole_batch(case)
        expect_close(outputs[f"loss{i}"], loss.to(dtype), f"{what}: the returned loss",
                     device=device, hidden=hidden)
        for key, grad in grads.items():
            expect_close(outputs[f"{key}{i}"], grad.to(dtype), f"{what}: the gradient of "
                         f"the {key.replace('_', ' ')}", device=device, hidden=hidden)


CHECKS = [
    Check("token_loss", "token_loss", "token_loss averages over real tokens only",
          _loss_inputs, PROBES["token_loss"], _judge_loss),
    Check("token_loss", "accumulate", "accumulated gradients equal the whole batch's",
          _accumulate_inputs, PROBES["accumulate"], _judge_accumulate),
    Check("token_loss", "device_dtype", "gradients and loss keep the model's device and dtype",
          _placement_inputs, PROBES["device_dtype"],
          _judge_accumulate),
]
