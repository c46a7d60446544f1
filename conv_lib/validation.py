"""Input checks shared by every conv_lib function.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind,
wrong value) with a message that names the parameter, the value it got and what was
expected, e.g.::

    ValueError: stride: got (0, 2); expected positive integers (>= 1)

Functions here never change their input; they return a normalised copy or view.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "as_array",
    "as_pair",
    "check_choice",
    "check_groups",
    "check_positive_int",
]

_FLOAT_KINDS = "fc"


def _describe(value: Any) -> str:
    """Short, readable description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_array(name: str, value: Any, ndim: int | None = None, *, floating: bool = False) -> np.ndarray:
    """Convert ``value`` to a NumPy array and check its number of dimensions.

    Parameters
    ----------
    name : str
        Parameter name used in error messages.
    value : array_like
        The value to convert. Must be numeric (bool, int, float; complex is refused).
    ndim : int, optional
        Required number of dimensions.
    floating : bool
        If true, integer and bool input is converted to float64; float32 and
        float64 are kept as they are.

    Returns
    -------
    numpy.ndarray
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: got {_describe(value)}; expected an array of numbers")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise TypeError(f"{name}: got {_describe(value)}; expected an array of numbers ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: got an array of dtype {arr.dtype}; expected real numbers (bool, int or float)"
        )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: got {arr.ndim}-D input of shape {arr.shape}; expected a {ndim}-D array")
    if floating and arr.dtype.kind not in _FLOAT_KINDS:
        arr = arr.astype(np.float64)
    elif floating and arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as ``int`` after checking it is an integer ``>= minimum``."""
    if not _is_int(value):
        raise TypeError(f"{name}: got {_describe(value)}; expected an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}: got {value}; expected an integer >= {minimum}")
    return int(value)


def as_pair(name: str, value: Any, *, minimum: int = 1) -> tuple[int, int]:
    """Normalise an int or a pair of ints (``stride=2`` or ``stride=(2, 1)``) to a pair.

    Raises if an entry is not an integer or is below ``minimum`` (1 for stride and
    dilation, 0 for padding).
    """
    if _is_int(value):
        items = (value, value)
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        items = tuple(value)
        if len(items) != 2:
            raise ValueError(
                f"{name}: got {_describe(value)}; expected an int or a pair of ints (height, width)"
            )
    else:
        raise TypeError(f"{name}: got {_describe(value)}; expected an int or a pair of ints (height, width)")
    if not all(_is_int(v) for v in items):
        raise TypeError(f"{name}: got {_describe(value)}; expected integers")
    if any(v < minimum for v in items):
        what = "positive integers (>= 1)" if minimum == 1 else f"integers >= {minimum}"
        raise ValueError(f"{name}: got {_describe(value)}; expected {what}")
    return int(items[0]), int(items[1])


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of the strings ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: got {_describe(value)}; expected one of {listed}")
    return value


def check_groups(groups: Any, in_channels: int, out_channels: int) -> int:
    """Check ``groups`` divides both channel counts; return it as ``int``."""
    groups = check_positive_int("groups", groups)
    if in_channels % groups:
        raise ValueError(f"groups: got {groups}; expected a divisor of the input channels ({in_channels})")
    if out_channels % groups:
        raise ValueError(f"groups: got {groups}; expected a divisor of the output channels ({out_channels})")
    return groups
