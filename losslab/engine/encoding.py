"""Compact encoding of curve grids for the browser.

A grid of curves (one curve per combination of control values) is stored as unsigned
16-bit codes, base64 text in the widget state. Finite values map linearly onto
``0 .. FINITE_MAX`` between the grid's own minimum and maximum; three codes above that
keep NaN and the infinities, so a curve that breaks (a naive float32 formula, say) is
drawn broken rather than hidden.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

NAN_CODE = 65535
POS_INF_CODE = 65534
NEG_INF_CODE = 65533
FINITE_MAX = 65532


@dataclass(frozen=True)
class Encoded:
    """One encoded block: ``codes`` (uint16, flat) and the range they span."""

    codes: np.ndarray
    lo: float
    hi: float

    def decode(self) -> np.ndarray:
        """Float64 values back from the codes (the inverse of :func:`encode`, to 1 code)."""
        return decode(self.codes, self.lo, self.hi)


def encode(values: np.ndarray) -> Encoded:
    """Quantise ``values`` (any shape, float) to uint16 codes over their finite range.

    Returns an :class:`Encoded` whose ``codes`` are flattened in C order. The largest error
    on a finite value is half a step: ``(hi - lo) / FINITE_MAX / 2``.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(arr)
    if finite.any():
        lo, hi = float(arr[finite].min()), float(arr[finite].max())
    else:
        lo, hi = 0.0, 0.0
    span = hi - lo
    codes = np.empty(arr.shape, dtype=np.uint16)
    if span > 0:
        codes[finite] = np.rint((arr[finite] - lo) / span * FINITE_MAX).astype(np.uint16)
    else:
        codes[finite] = 0
    codes[np.isnan(arr)] = NAN_CODE
    codes[np.isposinf(arr)] = POS_INF_CODE
    codes[np.isneginf(arr)] = NEG_INF_CODE
    return Encoded(codes, lo, hi)


def decode(codes: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Float64 values from uint16 ``codes`` made by :func:`encode` with range ``lo``..``hi``."""
    codes = np.asarray(codes, dtype=np.uint16)
    out = lo + codes.astype(np.float64) / FINITE_MAX * (hi - lo)
    out[codes == NAN_CODE] = np.nan
    out[codes == POS_INF_CODE] = np.inf
    out[codes == NEG_INF_CODE] = -np.inf
    return out


def pack(blocks: list[np.ndarray]) -> str:
    """Concatenate uint16 blocks and return them as base64 text (little-endian)."""
    if not blocks:
        return ""
    raw = np.concatenate([b.astype("<u2", copy=False).ravel() for b in blocks])
    return base64.b64encode(raw.tobytes()).decode("ascii")


def unpack(text: str) -> np.ndarray:
    """The uint16 codes back from :func:`pack`'s base64 text."""
    return np.frombuffer(base64.b64decode(text), dtype="<u2")
