"""Claims as code: each helper checks a symptom the text states, and raises if it is absent.

A chapter that demonstrates a mistake calls one of these instead of a quiet ``try`` /
``except``. If a future PyTorch stops showing the symptom (the error is no longer raised,
the loss is no longer ``nan``, the wrong value is no longer wrong), the helper raises
``ClaimFailed`` and the cell, and with it the build, fails with a message naming the claim.
Each helper returns what it observed, so the chapter can print it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import torch


class ClaimFailed(AssertionError):
    """A statement of the course no longer holds for the installed PyTorch."""


def _number(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"expected one number; got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().item())
    return float(value)


def raises(error: type[BaseException], pattern: str, fn: Callable[..., Any], *args,
           **kwargs) -> BaseException:
    """Call ``fn(*args, **kwargs)``; it must raise ``error`` with a message matching ``pattern``.

    ``pattern`` is a regular expression searched in ``str(err)``. Returns the exception.
    Raises ``ClaimFailed`` if nothing is raised, or something else, or another message.
    """
    try:
        result = fn(*args, **kwargs)
    except error as err:
        if not re.search(pattern, str(err)):
            raise ClaimFailed(f"{type(err).__name__} raised, but its message {str(err)!r} "
                              f"does not match {pattern!r}") from err
        return err
    except Exception as err:  # another error than the one the text names
        raise ClaimFailed(f"expected {error.__name__} matching {pattern!r}; "
                          f"got {type(err).__name__}: {err}") from err
    raise ClaimFailed(f"expected {error.__name__} matching {pattern!r}; "
                      f"nothing was raised and the call returned {result!r}")


def warns(category: type[Warning], pattern: str, fn: Callable[..., Any], *args,
          **kwargs) -> tuple[Any, warnings.WarningMessage]:
    """Call ``fn``; it must warn with ``category`` and a message matching ``pattern``.

    Returns ``(result, warning)``. Raises ``ClaimFailed`` if no such warning comes.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    for w in caught:
        if issubclass(w.category, category) and re.search(pattern, str(w.message)):
            return result, w
    raise ClaimFailed(f"expected a {category.__name__} matching {pattern!r}; got "
                      f"{[f'{w.category.__name__}: {w.message}' for w in caught]}")


def succeeds(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Call ``fn``; it must return without raising (a claim that PyTorch accepts a call).

    Returns its result. Raises ``ClaimFailed`` naming the error otherwise.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        raise ClaimFailed(f"expected the call to succeed; it raised "
                          f"{type(err).__name__}: {err}") from err


def silent(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Call ``fn``; it must return without raising and without any warning.

    The claim that PyTorch accepts a mistaken call "without a word". Returns its result.
    Raises ``ClaimFailed`` naming the error or the warnings otherwise.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = succeeds(fn, *args, **kwargs)
    if caught:
        raise ClaimFailed(f"expected no warning; got "
                          f"{[f'{w.category.__name__}: {w.message}' for w in caught]}")
    return result


def is_nan(value: Any, what: str = "the value") -> torch.Tensor:
    """``value`` must be ``nan`` (every element, if a tensor). Returns it as a tensor."""
    t = torch.as_tensor(value)
    if not torch.isnan(t).all():
        raise ClaimFailed(f"{what} should be nan; got {t.tolist()}")
    return t


def is_finite(value: Any, what: str = "the value") -> torch.Tensor:
    """Every element of ``value`` must be finite (no inf, no nan). Returns it as a tensor."""
    t = torch.as_tensor(value)
    if not torch.isfinite(t).all():
        raise ClaimFailed(f"{what} should be finite; got {t.tolist()}")
    return t


def close(value: Any, expected: Any, what: str = "the value", *, rtol: float = 1e-5,
          atol: float = 1e-8) -> float:
    """``value`` must equal ``expected`` within ``rtol``/``atol`` (one number each).

    Returns ``value`` as a float.
    """
    got, want = _number(value), _number(expected)
    if not abs(got - want) <= atol + rtol * abs(want):
        raise ClaimFailed(f"{what} should be {want!r} (rtol {rtol}, atol {atol}); got {got!r}")
    return got


def differs(value: Any, other: Any, what: str = "the value", *,
            at_least: float = 1e-3) -> float:
    """``value`` must differ from ``other`` by at least ``at_least`` (a silent wrong number).

    Returns ``value`` as a float.
    """
    got, ref = _number(value), _number(other)
    if not abs(got - ref) >= at_least:
        raise ClaimFailed(f"{what} should differ from {ref!r} by at least {at_least}; "
                          f"got {got!r}")
    return got


def between(value: Any, low: float, high: float, what: str = "the value") -> float:
    """``low <= value <= high`` must hold. Returns ``value`` as a float."""
    got = _number(value)
    if not low <= got <= high:
        raise ClaimFailed(f"{what} should lie in [{low}, {high}]; got {got!r}")
    return got


def holds(condition: Any, statement: str) -> None:
    """``condition`` must be true (a bool or a one-element tensor); ``statement`` says what."""
    if not bool(condition):
        raise ClaimFailed(f"the claim {statement!r} does not hold")
