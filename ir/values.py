"""Strict conversion of field values at the IR's boundary (attrs converters and the JSON loaders).

Every value that reaches an IR type from a file, a pass option or the API goes through one of these, so a
bad value is refused once, where it enters, with an :class:`IRError` naming the field:

- integers: Python or numpy integers, or a float with an integral value (``16.0``); never a bool, a string, a
  fraction (``1.5`` is refused, not truncated) or a non-finite number;
- reals: any finite real number (``NaN`` and ``±inf`` are refused), never a bool or a string;
- flags: ``True`` or ``False`` only (``1`` and ``"yes"`` are refused);
- text: a ``str``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from .errors import IRError

#: The largest tensor dimension, tile size or count the IR accepts (the range of a signed 32-bit integer).
MAX_INT = 2**31 - 1


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy.bool_ without importing numpy here


def to_int(value: Any, what: str, minimum: int | None = None, maximum: int | None = MAX_INT) -> int:
    """``value`` as an int, or an IRError naming ``what`` (see the module docstring for what is accepted)."""
    if _is_bool(value):
        raise IRError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        out = int(float(value))
    else:
        raise IRError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and out < minimum:
        raise IRError(f"{what} must be >= {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise IRError(f"{what} must be <= {maximum}, got {out}")
    return out


def to_real(value: Any, what: str, minimum: float | None = None, strict_minimum: bool = False) -> float:
    """``value`` as a finite float (``> minimum`` if ``strict_minimum``, else ``>= minimum``), or an IRError."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise IRError(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise IRError(f"{what} must be a finite number, got {out!r}")
    if minimum is not None and (out <= minimum if strict_minimum else out < minimum):
        raise IRError(f"{what} must be {'>' if strict_minimum else '>='} {minimum:g}, got {out!r}")
    return out


def to_flag(value: Any, what: str) -> bool:
    """``value`` if it is a bool, else an IRError (``1``, ``"yes"`` and ``None`` are refused)."""
    if not _is_bool(value):
        raise IRError(f"{what} must be true or false, got {value!r}")
    return bool(value)


def to_text(value: Any, what: str) -> str:
    """``value`` if it is a str, else an IRError."""
    if not isinstance(value, str):
        raise IRError(f"{what} must be a string, got {value!r}")
    return value


def to_list(value: Any, what: str) -> list[Any]:
    """``value`` as a list if it is a sequence (not a string, bytes or a mapping), else an IRError."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise IRError(f"{what} must be a list, got {_describe(value)}")
    return list(value)


def expect_object(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object (a mapping with string keys), else an IRError naming ``what``."""
    if not isinstance(value, Mapping):
        raise IRError(f"{what} must be an object, got {_describe(value)}")
    return value


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def integer(what: str, minimum: int | None = None, maximum: int | None = MAX_INT) -> Callable[[Any], int]:
    """An attrs converter for an integer field named ``what``."""
    return lambda value: to_int(value, what, minimum, maximum)


def optional_integer(what: str) -> Callable[[Any], int | None]:
    """An attrs converter for an integer field that may be None."""
    return lambda value: None if value is None else to_int(value, what)


def real(what: str, minimum: float | None = None, strict_minimum: bool = False) -> Callable[[Any], float]:
    """An attrs converter for a finite real field named ``what``."""
    return lambda value: to_real(value, what, minimum, strict_minimum)


def flag(what: str) -> Callable[[Any], bool]:
    """An attrs converter for a bool field named ``what``."""
    return lambda value: to_flag(value, what)


def text(what: str) -> Callable[[Any], str]:
    """An attrs converter for a str field named ``what``."""
    return lambda value: to_text(value, what)
