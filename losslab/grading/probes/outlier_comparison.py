"""Probes for outlier_comparison: call ``make_data`` and ``fit_line``."""

from __future__ import annotations

import torch

FORBIDDEN_OPS: tuple[str, ...] = ()


def probe_make_data(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        dtype = getattr(torch, case["dtype"])
        kwargs = {"n": case["n"], "outlier_share": case["outlier_share"], "dtype": dtype,
                  "device": p.device}
        out[f"a{i}"] = p.call("make_data", seed=case["seed"], **kwargs)
        out[f"b{i}"] = p.call("make_data", seed=case["seed"], **kwargs)
        out[f"c{i}"] = p.call("make_data", seed=case["seed"] + 1, **kwargs)
    return out


def probe_fit(p, inputs):
    return {str(i): p.call("fit_line", p.tensor(case["x"]), p.tensor(case["y"]),
                           loss=case["loss"])
            for i, case in enumerate(inputs["cases"])}


def probe_robust(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        for loss in ("mse", "l1", "huber"):
            out[f"{loss}{i}"] = p.call("fit_line", p.tensor(case["x"]), p.tensor(case["y"]),
                                       loss=loss)
    return out


PROBES = {"make_data": probe_make_data, "fit_line": probe_fit, "robust": probe_robust}
