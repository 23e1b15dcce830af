"""Probes for choose_loss: call ``choose_loss`` and the loss module it returns."""

from __future__ import annotations

import torch

FORBIDDEN_OPS: tuple[str, ...] = ()
_Tensor = torch.Tensor
_Module = torch.nn.Module


def _pair(p, pair, error):
    """The (loss, reason) pair, or a packed error; a namedtuple or list is a pair too."""
    if error:
        return None, error
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        return None, {"error": "`choose_loss` should return a pair (loss, reason), got "
                               f"{p.type_name(pair)}"}
    return tuple(pair), None


def probe(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        options = {k: (p.tensor(v) if isinstance(v, _Tensor) else v)
                   for k, v in case["options"].items()}
        pair, error = _pair(p, *p.call_raw("choose_loss", case["task"], **options))
        if error:
            out[str(i)] = error
            continue
        loss, reason = pair
        out[str(i)] = {
            "class": p.type_name(loss),
            "classes": p.type_names(loss),
            "module": isinstance(loss, _Module),
            "reason": p.pack(reason),
            "value": p.invoke("the returned loss", loss, p.tensor(case["input"]),
                              p.tensor(case["target"])),
        }
    return out


def probe_reasons(p, inputs):
    out = {}
    for task in inputs["tasks"]:
        pair, error = _pair(p, *p.call_raw("choose_loss", task))
        out[task] = error or p.pack(pair[1])
    out["unknown"] = p.call("choose_loss", inputs["unknown"])
    return out


PROBES = {"common": probe, "special": probe, "reasons": probe_reasons}
