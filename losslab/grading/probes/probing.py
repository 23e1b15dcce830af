"""Call the student's functions and pack what they return into plain, loadable data.

A :class:`Probe` runs next to the student's code: in the sandbox when grading, or in the
student's own kernel when they run the notebook. It never judges; it only records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

_Tensor = torch.Tensor
_isinstance = isinstance
_type = type


class MissingFunction(Exception):
    """The student's namespace lacks a function the check needs."""


MESSAGE_CHARS = 2000
MAX_ELEMENTS = 1_000_000


def _describe_exception(error: BaseException) -> str:
    """``Name: message`` with the whole message (any number of lines), capped in length."""
    try:
        text = str(error).strip()
    except BaseException:  # noqa: BLE001 - a student's __str__ may raise
        text = ""
    name = _type(error).__name__
    text = text[:MESSAGE_CHARS]
    return f"{name}: {text}" if text else name


def _error(label: str, error: BaseException) -> dict:
    """A packed exception: the message, and the names of its classes (subclasses count)."""
    names = [cls.__name__ for cls in _type(error).__mro__]
    return {"error": f"{label} raised {_describe_exception(error)}", "error_types": names}


class Probe:
    """Calls into one student namespace on one device.

    ``restore`` (optional) is called right after every student call; the sandbox passes a
    function that puts back any torch, numpy or math attribute the student's code replaced.
    """

    def __init__(
        self,
        namespace: dict,
        device: str,
        restore: Callable[[], None] | None = None,
    ) -> None:
        self.namespace = namespace
        self.device = device
        self._restore = restore or (lambda: None)

    def function(self, name: str) -> Callable:
        value = self.namespace.get(name)
        if not callable(value):
            raise MissingFunction(f"the notebook defines no function named `{name}`")
        return value

    def tensor(self, value: _Tensor, requires_grad: bool = False) -> _Tensor:
        """A fresh copy of an input on the probe's device (students may change inputs in place)."""
        copy = value.detach().clone().to(self.device)
        if requires_grad:
            copy.requires_grad_(True)
        return copy

    def call(self, name: str, *args: Any, **kwargs: Any) -> dict:
        """Run ``name(*args, **kwargs)``; return the packed result or the error it raised."""
        try:
            function = self.function(name)
        except MissingFunction as error:
            return {"error": str(error)}
        try:
            value = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
            self._restore()
            return _error(f"`{name}`", error)
        self._restore()
        return self.pack(value)

    def invoke(self, label: str, function: Any, *args: Any, **kwargs: Any) -> dict:
        """Call a callable the student's code returned; pack the result or the error."""
        if not callable(function):
            return {"error": f"{label} is not callable"}
        try:
            value = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001
            self._restore()
            return _error(label, error)
        self._restore()
        return self.pack(value)

    def type_name(self, value: Any) -> str:
        return _type(value).__name__

    def type_names(self, value: Any) -> list[str]:
        """The class of ``value`` and its bases (a subclass of an asked-for class counts)."""
        return [cls.__name__ for cls in _type(value).__mro__]

    def call_raw(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, dict | None]:
        """Like :meth:`call` but also hand back the raw value (for backward passes)."""
        try:
            function = self.function(name)
            value = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001
            self._restore()
            return None, _error(f"`{name}`", error)
        self._restore()
        return value, None

    def backward(self, value: Any, leaf: _Tensor) -> dict:
        """The gradient of ``value.sum()`` with respect to ``leaf``, packed."""
        if not _isinstance(value, _Tensor) or not value.requires_grad:
            return {"error": "the result does not carry a gradient (is it built from the inputs?)"}
        try:
            value.sum().backward()
        except BaseException as error:  # noqa: BLE001
            self._restore()
            return _error("backward()", error)
        self._restore()
        if leaf.grad is None:
            return {"error": "no gradient reached the input"}
        return self.pack(leaf.grad)

    def pack(self, value: Any) -> dict:
        if _isinstance(value, _Tensor):
            plain = _Tensor.detach(value)
            if plain.numel() > MAX_ELEMENTS:
                return {"kind": "other", "type": f"tensor with {plain.numel()} elements"}
            return {
                "kind": "tensor",
                "subclass": _type(value) is not _Tensor,
                "device": str(plain.device.type),
                "dtype": str(plain.dtype),
                "value": plain.to("cpu").clone().as_subclass(_Tensor),
            }
        # Subclasses (a namedtuple for a pair, a str subclass for a reason) are what the
        # docstrings allow; they are packed as their plain base type.
        for base in (bool, int, float, str):
            if _isinstance(value, base):
                return {"kind": "python", "type": base.__name__, "value": base(value)}
        if value is None:
            return {"kind": "python", "type": "NoneType", "value": None}
        if _isinstance(value, (tuple, list)):
            return {"kind": "sequence", "items": [self.pack(item) for item in list(value)[:64]]}
        if _isinstance(value, dict):
            return {"kind": "mapping",
                    "items": {str(k)[:200]: self.pack(v) for k, v in list(value.items())[:64]}}
        return {"kind": "other", "type": _type(value).__name__[:200]}
