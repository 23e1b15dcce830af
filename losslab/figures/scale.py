"""Figures of the chapter "Losses at scale" (``chapters/scale.md``)."""

from __future__ import annotations

import torch

from ..engine import widgets
from ..losses.scale import DTYPES, PRECISION_CLASSES, PRECISION_MARGINS, margin_ce


def precision_explorer() -> widgets.Figure:
    """Cross-entropy and its gradient computed in float32, bfloat16 and float16."""
    cache: dict = {}

    def curves(c, name):
        if (c, name) not in cache:
            cache[(c, name)] = margin_ce(c, DTYPES[name])
        return cache[(c, name)]

    xs = PRECISION_MARGINS.numpy()
    styles = {"float32": "solid", "bfloat16": "dashed", "float16": "dotted"}
    panels = []
    for k, (title, ylabel) in enumerate((("loss in each dtype", "cross-entropy"),
                                         ("gradient in each dtype (autograd)",
                                          "d loss / d m"))):
        panels.append(widgets.Panel(
            title, "target logit margin m", ylabel,
            [widgets.Series(name, xs, lambda c, name=name, k=k: curves(c, name)[k], ("c",),
                            style=styles[name], color=i)
             for i, name in enumerate(DTYPES)],
        ))
    exact: dict = {}

    def error(c, name):
        if c not in exact:
            exact[c] = margin_ce(c, torch.float64)[0]
        return curves(c, name)[0] - exact[c]

    panels.append(widgets.Panel(
        "loss error against float64", "target logit margin m", "loss − float64 loss",
        [widgets.Series(name, xs, lambda c, name=name: error(c, name), ("c",),
                        style=styles[name], color=i)
         for i, name in enumerate(DTYPES)],
    ))
    return widgets.figure(
        panels,
        [widgets.dropdown("c", {f"{c:,}": c for c in PRECISION_CLASSES}, label="classes C",
                          value=1000)],
        title="Cross-entropy computed in float32, bfloat16 and float16",
    )
