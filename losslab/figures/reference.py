"""The reference page's table (``chapters/reference.md``): every loss of ``torch.nn``, run."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import torch
from IPython.display import HTML

from ..engine import widgets
from ..losses import catalog

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
COLUMNS = ["loss", "functional", "input", "target", "options", "reduction", "formula",
           "example value", "taught in"]


def reference_rows() -> list[list[str]]:
    """One row of plain text per loss; runs each example and raises if its three ways differ."""
    rows = []
    for entry in catalog.CATALOG.values():
        value, gap = catalog.run_example(entry)
        rows.append([f"nn.{entry.name}", entry.functional, entry.input, entry.target,
                     entry.options, entry.reductions, entry.formula,
                     f"{value:.6f} (gap {gap:.0e})", entry.chapter])
    return rows


def chapter_title(chapter: str) -> str:
    """The first heading of ``chapters/<name>.md``, for a chapter path ``chapters/<name>``."""
    text = (CHAPTERS.parent / f"{chapter}.md").read_text()
    return re.search(r"^# (.+)$", text, re.M).group(1)


def reference_table() -> HTML:
    """The table as HTML; the last column links each loss to the chapter that teaches it."""
    titles = {e.chapter: chapter_title(e.chapter) for e in catalog.CATALOG.values()}

    def cell(i: int, text: str) -> str:
        safe = html.escape(text)
        if i in (0, 1):
            return f"<td><code>{safe}</code></td>"
        if i == len(COLUMNS) - 1:
            page = text.split("/")[-1]
            return f'<td><a href="{page}.html">{html.escape(titles[text])}</a></td>'
        return f"<td>{safe}</td>"

    head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in COLUMNS)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>"
                   for row in reference_rows())
    return HTML('<div class="losslab-reference" style="overflow-x: auto">'
                '<table class="table losslab-table"><caption>Every loss module of torch.nn, '
                'each example run when this page was built</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


#: Losses the course teaches beyond torch.nn: (loss, the course's function, what it is for,
#: the implementation the tests compare it with, the chapter).
BEYOND = [
    ("InfoNCE", "contrastive.info_nce", "embeddings from pairs, in-batch negatives",
     "cross-entropy over cosines", "chapters/contrastive"),
    ("NT-Xent (SimCLR)", "contrastive.nt_xent", "self-supervised embeddings from two views",
     "pytorch-metric-learning NTXentLoss", "chapters/contrastive"),
    ("CLIP's symmetric loss", "contrastive.CLIPLoss", "two encoders, learnable logit scale",
     "cross-entropy both ways", "chapters/contrastive"),
    ("supervised contrastive", "contrastive.supcon", "embeddings with several positives",
     "pytorch-metric-learning SupConLoss", "chapters/contrastive"),
    ("soft Dice", "dense.soft_dice_loss", "segmentation, small structures",
     "MONAI DiceLoss", "chapters/dense"),
    ("Tversky", "dense.tversky_loss", "segmentation, misses and false alarms weighed apart",
     "MONAI TverskyLoss", "chapters/dense"),
    ("CE + Dice", "dense.ce_dice_loss", "segmentation, a common default",
     "MONAI DiceCELoss", "chapters/dense"),
    ("DPO", "preference.dpo_loss", "fine-tuning on preference pairs",
     "an independent implementation in the tests", "chapters/preference"),
    ("z-loss", "preference.z_loss", "keeping log Z near 0 with large vocabularies",
     "a plain-Python log-sum-exp", "chapters/preference"),
]


def beyond_table() -> HTML:
    """The losses beyond torch.nn as HTML, each linked to the chapter that teaches it."""
    head = "".join(f'<th scope="col">{c}</th>' for c in
                   ("loss", "in losslab.losses", "for", "tested against", "taught in"))
    rows = []
    for name, function, use, reference, chapter in BEYOND:
        page = chapter.split("/")[-1]
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td><code>{html.escape(function)}</code></td>"
            f"<td>{html.escape(use)}</td><td>{html.escape(reference)}</td>"
            f'<td><a href="{page}.html">{html.escape(chapter_title(chapter))}</a></td></tr>')
    # Named by aria-label, not a <caption>: in the dark theme the theme paints HTML outputs
    # light, and a caption takes the theme's muted text colour, too faint on that.
    return HTML('<div class="losslab-reference" style="overflow-x: auto">'
                '<table class="table losslab-table" '
                'aria-label="Losses beyond torch.nn taught in this course">'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


SHIFTS = torch.linspace(-3.0, 3.0, 41, dtype=torch.float64)


def shift_curves(name: str) -> dict[str, np.ndarray]:
    """A loss's example as its first input element moves by SHIFTS: module and formula values,
    and the module's autograd derivative in the shift."""
    entry = catalog.CATALOG[name]
    module, formula, grad = [], [], []
    for value in SHIFTS.tolist():
        shift = torch.tensor(value, dtype=torch.float64, requires_grad=True)
        ways = entry.example(shift)
        (g,) = torch.autograd.grad(ways["module"], shift)
        module.append(ways["module"].item())
        formula.append(ways["formula"].item())
        grad.append(g.item())
    return {"module": np.array(module), "formula": np.array(formula), "grad": np.array(grad)}


def rescaled(curves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Loss values mapped to [0, 1] over the shifts, the gradient by the same factor."""
    lo, hi = curves["module"].min(), curves["module"].max()
    span = hi - lo
    return {"module": (curves["module"] - lo) / span, "formula": (curves["formula"] - lo) / span,
            "grad": curves["grad"] / span}


def every_loss() -> widgets.Figure:
    """One widget for all 23 losses: each example's loss and gradient along one input."""
    xs = SHIFTS.numpy()
    shown = {name: rescaled(shift_curves(name)) for name in catalog.CATALOG}
    return widgets.figure(
        [
            widgets.Panel("loss along one input, rescaled to [0, 1]",
                          "shift added to the first input element", "(L − min) / (max − min)", [
                              widgets.Series("nn module", xs, lambda loss: shown[loss]["module"],
                                             ("loss",)),
                              widgets.Series("course formula", xs,
                                             lambda loss: shown[loss]["formula"], ("loss",),
                                             style="dotted", color=5),
                          ], ylim=(-0.05, 1.05)),
            widgets.Panel("its gradient (autograd), same scale",
                          "shift added to the first input element", "d / d shift", [
                              widgets.Series("autograd", xs, lambda loss: shown[loss]["grad"],
                                             ("loss",))], ylim=(-0.8, 0.8)),
        ],
        [widgets.dropdown("loss", list(catalog.CATALOG), label="loss",
                          value="GaussianNLLLoss")],
        title="Every loss of torch.nn along one input",
    )
