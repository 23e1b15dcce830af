"""Expectations for the checks' ``judge`` functions: packed student results to clear verdicts.

Messages for visible cases say what was expected and what came. Messages for hidden cases
describe the inputs (shapes, dtypes, options) but never quote a reference value.
"""

from __future__ import annotations

import torch

from . import CheckFailed


def _short(value: torch.Tensor) -> str:
    flat = value.detach().reshape(-1)
    shown = ", ".join(f"{x:.6g}" for x in flat[:6].tolist())
    more = ", ..." if flat.numel() > 6 else ""
    if value.dim() == 0:
        return shown
    return f"tensor([{shown}{more}], shape={tuple(value.shape)})"


def _error_text(out: dict, hidden: bool) -> str:
    """The student's exception; for hidden cases only its type (a message could quote the
    hidden inputs)."""
    text = str(out["error"])
    if hidden and " raised " in text:
        head, rest = text.split(" raised ", 1)
        return f"{head} raised {rest.split(':', 1)[0]}"
    return text


def tensor_result(out: dict, what: str, *, device: str, dtype: torch.dtype,
                  hidden: bool = False) -> torch.Tensor:
    """The student's tensor, after checking it is a plain tensor on ``device`` with ``dtype``."""
    if "error" in out:
        raise CheckFailed(f"{what}: {_error_text(out, hidden)}")
    if out.get("kind") != "tensor":
        came = out.get("type") or out.get("kind")
        raise CheckFailed(f"{what}: expected a torch.Tensor, got {came}")
    if out["subclass"]:
        raise CheckFailed(f"{what}: expected a plain torch.Tensor, got a subclass of it")
    if out["device"] != device:
        raise CheckFailed(
            f"{what}: the result should stay on the input's device {device!r}, "
            f"but it is on {out['device']!r}"
        )
    if out["dtype"] != str(dtype):
        raise CheckFailed(
            f"{what}: the result should keep the input's dtype {dtype}, but it is {out['dtype']}"
        )
    value = out["value"]
    if not isinstance(value, torch.Tensor) or str(value.dtype) != str(dtype):
        raise CheckFailed(f"{what}: the recorded result is not a tensor of dtype {dtype}")
    return value


def expect_close(
    out: dict,
    expected: torch.Tensor,
    what: str,
    *,
    device: str,
    hidden: bool,
    rtol: float | None = None,
    atol: float | None = None,
) -> torch.Tensor:
    """Check a packed result against a reference computed here, in the grader."""
    actual = tensor_result(out, what, device=device, dtype=expected.dtype, hidden=hidden)
    if tuple(actual.shape) != tuple(expected.shape):
        raise CheckFailed(
            f"{what}: expected a result of shape {tuple(expected.shape)}, "
            f"got shape {tuple(actual.shape)}"
        )
    if not bool(torch.isfinite(actual).all()):
        raise CheckFailed(f"{what}: the result contains inf or nan")
    if rtol is None:
        rtol = 1e-4 if expected.dtype in (torch.float32, torch.float16) else 1e-7
    if atol is None:
        atol = 1e-5 if expected.dtype in (torch.float32, torch.float16) else 1e-9
    scale = atol + rtol * expected.abs()
    if not bool(((actual - expected).abs() <= scale).all()):
        if hidden:
            raise CheckFailed(f"{what}: the result does not match the reference")
        raise CheckFailed(f"{what}: expected {_short(expected)}, got {_short(actual)}")
    return actual


def expect_finite_gradient(out: dict, reference_grad: torch.Tensor, what: str, *,
                           device: str, dtype: torch.dtype) -> None:
    """Check a packed gradient: finite everywhere, and close to ``reference_grad``."""
    grad = tensor_result(out, what, device=device, dtype=dtype, hidden=True)
    if not bool(torch.isfinite(grad).all()):
        raise CheckFailed(f"{what}: the gradient contains inf or nan")
    expect_close(out, reference_grad.to(dtype), what, device=device, hidden=True, atol=1e-6)


def python_result(out: dict, what: str) -> object:
    """A plain Python value the student returned (str, int, float, bool, None)."""
    if "error" in out:
        raise CheckFailed(f"{what}: {out['error']}")
    if out.get("kind") != "python":
        came = out.get("type") or out.get("kind")
        raise CheckFailed(f"{what}: expected a plain Python value, got {came}")
    return out["value"]


def expect_error(out: dict, what: str, error_name: str) -> str:
    """The student's call should have raised ``error_name`` or a subclass of it; return the
    whole message it gave (any number of lines)."""
    text = out.get("error", "")
    types = out.get("error_types") or []
    if not text or error_name not in types:
        came = text or "no error"
        raise CheckFailed(f"{what}: expected {error_name} (or a subclass) to be raised, "
                          f"got {came}")
    # "`name` raised SomeError: message"
    rest = text.split(" raised ", 1)[-1]
    return rest.split(":", 1)[1].strip() if ":" in rest else ""
