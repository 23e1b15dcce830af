"""Probes for token_loss: call ``token_loss`` and ``accumulate_gradients``.

The model handed to ``accumulate_gradients`` is built here from the grader's weights: an
embedding and a linear layer, so every token's logits depend on its own input token only.
"""

from __future__ import annotations

import torch

FORBIDDEN_OPS: tuple[str, ...] = ()
_Tensor = torch.Tensor


def build_model(weights: dict, device: str) -> torch.nn.Module:
    """``Embedding(V, D)`` then ``Linear(D, V)`` with the given weights and their dtype."""
    vocab, dim = weights["embedding"].shape
    dtype = weights["embedding"].dtype
    model = torch.nn.Sequential(torch.nn.Embedding(vocab, dim), torch.nn.Linear(dim, vocab))
    model.to(device=device, dtype=dtype)
    with torch.no_grad():
        model[0].weight.copy_(weights["embedding"])
        model[1].weight.copy_(weights["linear_weight"])
        model[1].bias.copy_(weights["linear_bias"])
    return model


PARAMETERS = {"embedding": "0.weight", "linear_weight": "1.weight", "linear_bias": "1.bias"}


def probe_loss(p, inputs):
    return {str(i): p.call("token_loss", p.tensor(case["logits"]), p.tensor(case["target"]),
                           pad_index=case["pad_index"])
            for i, case in enumerate(inputs["cases"])}


def probe_accumulate(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        model = build_model(case["weights"], p.device)
        rows: list[int] = []

        def count_rows(module, args, kwargs, rows=rows):
            tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, _Tensor)]
            rows.append(int(tensors[0].shape[0]) if tensors and tensors[0].dim() > 0 else -1)

        # On the embedding, which every call of the model reaches, model(x) or model.forward(x).
        model[0].register_forward_pre_hook(count_rows, with_kwargs=True)
        batches = [(p.tensor(x), p.tensor(y)) for x, y in zip(case["inputs"], case["targets"])]
        out[f"loss{i}"] = p.call("accumulate_gradients", model, batches,
                                 pad_index=case["pad_index"])
        named = dict(model.named_parameters())
        for key, name in PARAMETERS.items():
            grad = named[name].grad
            out[f"{key}{i}"] = (p.pack(grad) if grad is not None else
                                {"error": f"no gradient reached the model's {name}"})
        out[f"rows{i}"] = list(rows[:1000])
    return out


PROBES = {"token_loss": probe_loss, "accumulate": probe_accumulate,
          "device_dtype": probe_accumulate}
