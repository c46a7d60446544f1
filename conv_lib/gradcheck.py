"""Numerical gradient checking: is a hand-written backward pass right?

Compare an analytic gradient (e.g. from :func:`conv_lib.conv2d_backward`) with central
differences of the forward pass::

    upstream = rng.standard_normal(conv2d(x, w).shape)
    f = lambda x_: np.sum(conv2d(x_, w) * upstream)          # scalar "loss"
    grad_x, grad_w, grad_b = conv2d_backward(upstream, x, w)
    print(check_gradient(f, x, grad_x))

Work in float64: with ``eps = 1e-6`` the differences of float32 values are mostly
rounding noise.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conv_lib.validation import as_array

__all__ = ["GradCheckResult", "check_gradient", "numeric_gradient"]


def _check_tolerance(name: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: got {value!r}; expected a number")
    ok = np.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise ValueError(f"{name}: got {value!r}; expected a finite number {'> 0' if positive else '>= 0'}")
    return float(value)


def _scalar(f: Callable[[np.ndarray], Any], x: np.ndarray) -> float:
    value = f(x)
    arr = np.asarray(value)
    if arr.ndim != 0 and arr.size != 1:
        raise ValueError(
            f"f: returned an array of shape {arr.shape}; expected a scalar (e.g. wrap it in np.sum)"
        )
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"f: returned {value!r}; expected a real number")
    return float(arr.reshape(()))


def numeric_gradient(f: Callable[[np.ndarray], Any], x: Any, eps: float = 1e-6) -> np.ndarray:
    """Gradient of a scalar function by central differences.

    ``grad[idx] = (f(x + eps*e_idx) - f(x - eps*e_idx)) / (2*eps)`` for every element
    ``idx`` of ``x``: ``2 * x.size`` calls of ``f``. The error is ``O(eps**2)`` plus
    rounding of about ``|f| * 1e-16 / eps``.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``; called with a float64 array shaped like ``x``. It must not keep
        or change its argument.
    x : array_like, any shape
        Where to take the gradient. Never modified (``f`` sees a float64 copy).
    eps : float
        Step, ``> 0``.

    Returns
    -------
    grad : numpy.ndarray, shape of x, float64
    """
    if not callable(f):
        raise TypeError(f"f: got {f!r}; expected a function f(x) -> float")
    point = np.array(as_array("x", x), dtype=np.float64)  # always a copy
    eps = _check_tolerance("eps", eps, positive=True)
    grad = np.zeros_like(point)
    flat_point, flat_grad = point.reshape(-1), grad.reshape(-1)
    for k in range(point.size):
        original = flat_point[k]
        try:
            flat_point[k] = original + eps
            f_plus = _scalar(f, point)
            flat_point[k] = original - eps
            f_minus = _scalar(f, point)
        finally:
            flat_point[k] = original
        flat_grad[k] = (f_plus - f_minus) / (2 * eps)
    return grad


@dataclass(frozen=True, eq=False)
class GradCheckResult:
    """Outcome of :func:`check_gradient`; ``print`` it for a one-line report.

    ``bool(result)`` is ``result.passed``, so ``assert check_gradient(...)`` works.

    Attributes
    ----------
    max_abs_error : float
        ``max |analytic - numeric|``.
    max_rel_error : float
        ``max |analytic - numeric| / max(|analytic| + |numeric|, 1e-12)`` (the cs231n
        relative error; below about 1e-7 is excellent, above 1e-2 is surely wrong).
    passed : bool
        ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere (``np.allclose``).
    worst_index : tuple of int, or None
        Index of the element furthest outside that tolerance (largest
        ``|analytic - numeric| / (atol + rtol * |numeric|)``); None for an empty ``x``.
    numeric, analytic : numpy.ndarray
        The two gradients compared.
    rtol, atol : float
        The tolerances used.
    """

    max_abs_error: float
    max_rel_error: float
    passed: bool
    worst_index: tuple[int, ...] | None
    numeric: np.ndarray = field(repr=False)
    analytic: np.ndarray = field(repr=False)
    rtol: float = 1e-5
    atol: float = 1e-7

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        text = (
            f"gradient check {verdict}: max abs error {self.max_abs_error:.3e}, "
            f"max rel error {self.max_rel_error:.3e} (rtol={self.rtol:g}, atol={self.atol:g})"
        )
        if self.worst_index is not None:
            idx = self.worst_index
            text += (
                f"; worst at index {idx}: analytic {self.analytic[idx]:.6g}, numeric {self.numeric[idx]:.6g}"
            )
        return text


def check_gradient(
    f: Callable[[np.ndarray], Any],
    x: Any,
    analytic_grad: Any,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> GradCheckResult:
    """Compare an analytic gradient of scalar ``f`` at ``x`` with :func:`numeric_gradient`.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : array_like, any shape
        The point (never modified).
    analytic_grad : array_like, shape of x, or callable
        The gradient to check, or a function ``g(x) -> gradient`` called with a copy of ``x``.
    eps : float
        Finite-difference step, ``> 0``.
    rtol, atol : float
        Tolerances, ``>= 0``: passes if ``|analytic - numeric| <= atol + rtol * |numeric|``
        for every element.

    Returns
    -------
    GradCheckResult
    """
    point = np.array(as_array("x", x), dtype=np.float64)
    rtol = _check_tolerance("rtol", rtol, positive=False)
    atol = _check_tolerance("atol", atol, positive=False)
    if callable(analytic_grad):
        analytic_grad = analytic_grad(point.copy())
    analytic = np.array(as_array("analytic_grad", analytic_grad), dtype=np.float64)
    if analytic.shape != point.shape:
        raise ValueError(f"analytic_grad: got shape {analytic.shape}; expected the shape of x, {point.shape}")
    numeric = numeric_gradient(f, point, eps=eps)
    if point.size == 0:
        return GradCheckResult(0.0, 0.0, True, None, numeric, analytic, rtol, atol)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf / NaN gradients are reported
        abs_error = np.abs(analytic - numeric)
        rel_error = abs_error / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-12)
        allowed = atol + rtol * np.abs(numeric)
        excess = np.where(allowed > 0, abs_error / allowed, np.where(abs_error > 0, np.inf, 0.0))
    excess = np.where(np.isnan(abs_error), np.inf, excess)  # a NaN gradient is the worst
    worst = tuple(int(v) for v in np.unravel_index(int(np.argmax(excess)), point.shape))
    passed = bool(np.all(abs_error <= allowed))
    return GradCheckResult(
        max_abs_error=float(np.max(abs_error)),
        max_rel_error=float(np.max(rel_error)),
        passed=passed,
        worst_index=worst,
        numeric=numeric,
        analytic=analytic,
        rtol=rtol,
        atol=atol,
    )
