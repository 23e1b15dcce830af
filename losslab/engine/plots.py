"""Static matplotlib plots: each function takes an ``Axes`` and returns the artists it drew."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The same palette as the widget's light theme, so snapshots and live plots agree.
PALETTE = ("#0b63b0", "#c2410c", "#0f7b55", "#a0338a", "#8a6d00", "#4b5563")
LINESTYLES = {"solid": "-", "dashed": "--", "dotted": ":"}


@dataclass(frozen=True)
class Curve:
    """One drawable series: ``x`` and ``y`` arrays of equal length, with its look."""

    label: str
    x: np.ndarray
    y: np.ndarray
    kind: str = "line"
    style: str = "solid"
    color: int = 0


def draw_curves(
    ax,
    curves: Sequence[Curve],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
) -> list:
    """Draw ``curves`` on ``ax`` with labels, limits and a legend; return the artists."""
    artists = []
    for c in curves:
        color = PALETTE[c.color % len(PALETTE)]
        if c.kind == "points":
            artists.append(ax.scatter(c.x, c.y, s=12, color=color, label=c.label, alpha=0.8))
        else:
            (line,) = ax.plot(
                c.x, c.y, LINESTYLES.get(c.style, "-"), color=color, label=c.label, lw=1.8
            )
            artists.append(line)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="best")
    return artists


def loss_and_gradient(ax_loss, ax_grad, x, curves: dict[str, tuple[np.ndarray, np.ndarray]],
                      xlabel: str = "error e = input − target") -> list:
    """Plot loss curves on ``ax_loss`` and their gradients on ``ax_grad``.

    ``curves`` maps a label to ``(loss, grad)`` arrays over ``x``. Returns all artists.
    """
    loss = [Curve(k, x, v[0], color=i) for i, (k, v) in enumerate(curves.items())]
    grad = [Curve(k, x, v[1], color=i) for i, (k, v) in enumerate(curves.items())]
    return draw_curves(ax_loss, loss, title="loss", xlabel=xlabel, ylabel="loss") + draw_curves(
        ax_grad, grad, title="gradient", xlabel=xlabel, ylabel="d loss / d input"
    )
