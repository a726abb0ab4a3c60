"""The one family of value checks: each raises ``ValueError`` naming the field.

Every message starts with the field as the user wrote it and ends with the value it got::

    config.schedule.base_lr must be a finite number > 0, got -1
    config.loss.k must be an integer, got 2.5
    config.dtype must be one of ('float32', 'bfloat16'), got 'fp16'

The ``require_*`` helpers return the checked value (as ``int``, ``float`` or ``bool``);
``fail`` raises with a rule of the caller's own (``fail(field, "must be <= base_lr (0.1)",
value)``) and ``check`` raises a message written out in full, for rules that span fields.

Booleans are not numbers here: ``True`` is refused where an integer or a number is
expected, although ``isinstance(True, int)`` holds. NumPy scalars count as what they are
(``np.int64`` is an integer, ``np.float32`` a number, ``np.bool_`` a bool).

Plain Python and NumPy, no JAX: call these on concrete values (configs, Python
hyper-parameters at trace time), never on traced arrays.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Container, NoReturn

import numpy as np

_NO_VALUE = object()


def fail(field: str, rule: str, value: Any = _NO_VALUE) -> NoReturn:
    """Raises ``ValueError(f"{field} {rule}, got {value!r}")``.

    Args:
      field: what the user wrote, e.g. ``'config.loss.temperature'``.
      rule: the broken rule, e.g. ``'must be > 0'``.
      value: the offending value; when left out the message ends after the rule.
    """
    if value is _NO_VALUE:
        raise ValueError(f"{field} {rule}")
    raise ValueError(f"{field} {rule}, got {value!r}")


def check(cond: Any, message: str) -> None:
    """Raises ``ValueError(message)`` unless ``cond`` (the message names the field(s))."""
    if not cond:
        raise ValueError(message)


def is_bool(value: Any) -> bool:
    """Whether ``value`` is ``True``/``False`` or a NumPy bool."""
    return isinstance(value, (bool, np.bool_))


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), a bool not counting as one."""
    return isinstance(value, numbers.Integral) and not is_bool(value)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (Python or NumPy), a bool not counting as one."""
    return isinstance(value, numbers.Real) and not is_bool(value)


def interval(low: float | None = None, high: float | None = None, *, low_open: bool = False,
             high_open: bool = False, fmt: Callable[[Any], str] = str) -> str:
    """The rule text of a range: ``'>= 0'``, ``'> 0'``, ``'<= 1'``, ``'in [0, 1)'`` or ``''``."""
    if low is not None and high is not None:
        return (f"in {'(' if low_open else '['}{fmt(low)}, {fmt(high)}"
                f"{')' if high_open else ']'}")
    if low is not None:
        return f"{'>' if low_open else '>='} {fmt(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {fmt(high)}"
    return ""


def require_int(value: Any, field: str, *, low: int | None = None,
                high: int | None = None) -> int:
    """Returns ``int(value)``; raises unless it is an integer in ``[low, high]``.

    The message is ``"{field} must be an integer >= {low}, got {value!r}"`` (``an integer``,
    ``an integer <= {high}`` or ``an integer in [{low}, {high}]`` for the other bounds).
    """
    if not is_int(value) or (low is not None and value < low) or \
            (high is not None and value > high):
        rule = interval(low, high)
        fail(field, f"must be an integer{' ' + rule if rule else ''}", value)
    return int(value)


def require_number(value: Any, field: str, *, low: float | None = None,
                   high: float | None = None, low_open: bool = False,
                   high_open: bool = False, finite: bool = True) -> float:
    """Returns ``float(value)``; raises unless it is a real number in the given range.

    NaN is always refused. ``low``/``high`` bound the range, closed unless ``low_open`` /
    ``high_open``. Bounds print with ``:g`` (``0.0`` as ``0``).

    With ``finite=True`` (infinities refused) every failure reads ``"{field} must be a
    finite number > 0, got {value!r}"`` (the range as given). With ``finite=False``
    (infinities allowed where the range allows them) a non-number reads ``must be a real
    number`` and an out-of-range value names the range alone: ``must be > 0``.
    """
    rule = interval(low, high, low_open=low_open, high_open=high_open, fmt=lambda x: f"{x:g}")
    if finite:
        kind = range_rule = "a finite number" + (f" {rule}" if rule else "")
    else:
        kind, range_rule = "a real number", rule or "a number (not NaN)"
    if not is_number(value):
        fail(field, f"must be {kind}", value)
    try:
        v = float(value)
    except OverflowError:               # an int beyond the float range
        v = math.inf if value > 0 else -math.inf
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if math.isnan(v) or (finite and math.isinf(v)) or too_low or too_high:
        fail(field, f"must be {range_rule}", value)
    return v


def require_choice(value: Any, field: str, choices: Container[Any]) -> Any:
    """Returns ``value``; raises ``"{field} must be one of {choices!r}, got {value!r}"``
    unless ``value in choices``."""
    try:
        ok = value in choices
    except (TypeError, ValueError):     # unhashable, or an array compared element-wise
        ok = False
    if not ok:
        fail(field, f"must be one of {choices!r}", value)
    return value


def require_bool(value: Any, field: str) -> bool:
    """Returns ``bool(value)``; raises ``"{field} must be a bool (True or False), got
    {value!r}"`` unless it is ``True``/``False`` or a NumPy bool (``1`` is refused)."""
    if not is_bool(value):
        fail(field, "must be a bool (True or False)", value)
    return bool(value)
