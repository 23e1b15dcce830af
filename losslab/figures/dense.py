"""The dense-prediction chapter's figure: cross-entropy and Dice on a small, large or no object."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..engine import widgets
from ..losses import dense

SIZE = 16
#: The foreground logit of every pixel outside the region the x axis moves.
BACKGROUND_LOGIT = -5.0
Z_GRID = torch.linspace(-6.0, 6.0, 121, dtype=torch.float64)
OBJECTS = {
    "small object (4 of 256 pixels)": 2,
    "large object (64 of 256 pixels)": 8,
    "no object (an empty mask)": 0,
}
SMOOTHS = [1e-5, 0.1, 1.0]
#: Where the moving region sits; for the empty mask it is a 2 × 2 false alarm.
CORNER = 3


def grid_index(z: float) -> int:
    """The index of the point of ``Z_GRID`` nearest to ``z``."""
    return int((Z_GRID - z).abs().argmin())


def region(side: int) -> torch.Tensor:
    """A bool (SIZE, SIZE) mask: a ``side`` × ``side`` square (2 × 2 when ``side`` is 0)."""
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    side = side or 2
    mask[CORNER:CORNER + side, CORNER:CORNER + side] = True
    return mask


def scene(side: int):
    """The target (1, SIZE, SIZE) int64, and the region the x axis's logit is given to."""
    moving = region(side)
    target = (moving if side else torch.zeros_like(moving)).long()[None]
    return target, moving


def logits_for(z: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    """(M, 2, SIZE, SIZE) logits, one image per value of ``z`` (M,): background channel 0,
    foreground ``z`` on the region and ``BACKGROUND_LOGIT`` elsewhere."""
    fg = torch.where(moving, z[:, None, None], torch.tensor(BACKGROUND_LOGIT, dtype=z.dtype))
    return torch.stack([torch.zeros_like(fg), fg], dim=1)


@functools.cache
def curves(side: int, smooth: float):
    """Over ``Z_GRID``: {name: (loss, autograd gradient in z)} for CE, Dice and CE + Dice."""
    target, moving = scene(side)
    z = Z_GRID.clone().requires_grad_(True)
    logits = logits_for(z, moving)
    targets = target.expand(len(z), -1, -1)
    # One image per grid point: per-image losses, so the gradient of their sum is each
    # image's own derivative in its z.
    ce = F.cross_entropy(logits, targets, reduction="none").mean(dim=(1, 2))
    dice = dense.dice_from_logits(logits, targets, smooth_nr=smooth, smooth_dr=smooth,
                                  include_background=False, reduction="none")[:, 0]
    out = {}
    for name, value in (("ce", ce), ("dice", dice), ("both", ce + dice)):
        (g,) = torch.autograd.grad(value.sum(), z, retain_graph=True)
        out[name] = (value.detach().numpy(), g.numpy())
    return out


SERIES = [("cross-entropy (mean over pixels)", "ce", "solid", 0),
          ("soft Dice (foreground)", "dice", "solid", 1),
          ("CE + Dice", "both", "dashed", 2)]


def object_size_explorer() -> widgets.Figure:
    """Cross-entropy, soft Dice and their sum as the model's logit on one region moves."""
    xs = Z_GRID.numpy()
    panels = []
    for i, (title, ylabel) in enumerate((("loss against the logit on the region", "loss"),
                                         ("gradient in that logit (autograd)", "d loss / d z"))):
        panels.append(widgets.Panel(
            title, "z, foreground logit on the object's pixels (or the false alarm's)", ylabel,
            [widgets.Series(label, xs,
                            lambda obj, smooth, key=key, i=i: curves(obj, smooth)[key][i],
                            ("obj", "smooth"), style=style, color=color)
             for label, key, style, color in SERIES],
            xlim=(-6.0, 6.0), xname="z"))
    return widgets.figure(
        panels,
        [
            widgets.dropdown("obj", OBJECTS, label="object in the target"),
            widgets.slider("smooth", SMOOTHS, label="Dice smoothing (smooth_nr = smooth_dr)",
                           value=1e-5),
        ],
        title="Cross-entropy and Dice on a small, a large and an empty mask",
    )
