"""Max and average pooling on NCHW batches, with ``torch.nn.functional`` semantics.

Shapes: ``x: (N, C, H, W)`` -> ``(N, C, H_out, W_out)`` with
``H_out = floor((H + 2*padding - kH) / stride) + 1`` (``ceil_mode=False``).
``stride=None`` means ``stride = kernel_size``; padding may be at most half the kernel
(torch's rule). Max pooling pads with ``-inf``; average pooling pads with zeros and
by default divides by ``kH*kW`` (``count_include_pad=True``).

Backward passes accumulate where windows overlap. ``max_pool2d_backward`` sends each
window's gradient to the *first* maximum in row-major window order, exactly like
torch on CPU (an element is taken if it is greater than the running maximum or NaN).

Dtypes: float32 stays float32, float64 stays float64, integers/bools become float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conv_lib.layout import pad_hw, tap_slice
from conv_lib.validation import as_array, as_pair, check_positive_int

__all__ = ["avg_pool2d", "avg_pool2d_backward", "max_pool2d", "max_pool2d_backward"]

IntPair = int | tuple[int, int]


def _pool_geometry(x_shape, kernel_size, stride, padding):
    """Validate pooling parameters; return kernel, stride, padding and output size."""
    k = as_pair("kernel_size", kernel_size)
    s = k if stride is None else as_pair("stride", stride)
    p = as_pair("padding", padding, minimum=0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"padding: got {p}; expected at most half the kernel size {k} (torch: pad should be "
            "at most half of effective kernel size)"
        )
    h, w = x_shape[-2:]
    if k[0] > h + 2 * p[0] or k[1] > w + 2 * p[1]:
        raise ValueError(
            f"kernel_size: got {k}; expected at most the padded input size "
            f"{(h + 2 * p[0], w + 2 * p[1])} (input spatial size {(h, w)}, padding {p})"
        )
    out = ((h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1)
    return k, s, p, out


def _check_x(x: Any) -> np.ndarray:
    x = as_array("x", x, ndim=4, floating=True)
    if min(x.shape[1:]) < 1:
        raise ValueError(f"x: got shape {x.shape}; expected non-zero channels, height and width")
    return x


def _check_grad(grad_out: Any, expected: tuple[int, ...]) -> np.ndarray:
    grad_out = as_array("grad_out", grad_out, ndim=4, floating=True)
    if grad_out.shape != expected:
        raise ValueError(
            f"grad_out: got shape {grad_out.shape}; expected {expected}, the pooled output shape"
        )
    return grad_out


def _taps(k, s, out):
    """Yield ``(t, rows, cols)``: tap number (row-major) and the padded-input slices it reads."""
    for i in range(k[0]):
        for j in range(k[1]):
            yield i * k[1] + j, tap_slice(i, out[0], s[0]), tap_slice(j, out[1], s[1])


def max_pool2d(
    x: Any, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> np.ndarray:
    """Max pooling, like ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows).
    padding : int or (int, int)
        Implicit ``-inf`` border, at most half the kernel size.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    """
    x = _check_x(x)
    k, s, p, out_hw = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = _pad_with(x, p, -np.inf)
    out = None
    for _, rs, cs in _taps(k, s, out_hw):
        out = xp[:, :, rs, cs].copy() if out is None else np.maximum(out, xp[:, :, rs, cs])
    return out


def _pad_with(x: np.ndarray, p: tuple[int, int], value: float) -> np.ndarray:
    if p == (0, 0):
        return x
    xp = np.full(x.shape[:2] + (x.shape[2] + 2 * p[0], x.shape[3] + 2 * p[1]), value, dtype=x.dtype)
    xp[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]] = x
    return xp


def _argmax_taps(x: np.ndarray, k, s, p, out_hw) -> np.ndarray:
    """Index (row-major tap number) of the first maximum of every window, torch's rule."""
    xp = _pad_with(x, p, -np.inf)
    h, w = x.shape[2:]
    best = np.full(x.shape[:2] + out_hw, -np.inf, dtype=x.dtype)
    idx = np.full(best.shape, -1, dtype=np.int64)
    ys, xs = np.arange(out_hw[0]) * s[0], np.arange(out_hw[1]) * s[1]
    for t, rs, cs in _taps(k, s, out_hw):
        i, j = divmod(t, k[1])
        inside = ((ys + i - p[0] >= 0) & (ys + i - p[0] < h))[:, None] & (
            (xs + j - p[1] >= 0) & (xs + j - p[1] < w)
        )[None, :]
        v = xp[:, :, rs, cs]
        take = inside & ((v > best) | np.isnan(v) | (idx == -1))
        best = np.where(take, v, best)
        idx[take] = t
    return idx


def max_pool2d_backward(
    grad_out: Any, x: Any, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    Parameters
    ----------
    grad_out : array_like, shape (N, C, H_out, W_out)
    x : array_like, shape (N, C, H, W)
        The forward input (the maxima are recomputed from it).
    kernel_size, stride, padding
        As given to :func:`max_pool2d`.

    Returns
    -------
    grad_x : ndarray, shape (N, C, H, W)
        Each window's gradient goes to its first maximum (row-major order); elements that
        are the maximum of several overlapping windows receive the sum.
    """
    x = _check_x(x)
    k, s, p, out_hw = _pool_geometry(x.shape, kernel_size, stride, padding)
    grad_out = _check_grad(grad_out, x.shape[:2] + out_hw)
    dtype = np.result_type(grad_out, x)
    idx = _argmax_taps(x, k, s, p, out_hw)
    gxp = np.zeros(x.shape[:2] + (x.shape[2] + 2 * p[0], x.shape[3] + 2 * p[1]), dtype=dtype)
    zero = np.zeros((), dtype=dtype)
    for t, rs, cs in _taps(k, s, out_hw):
        gxp[:, :, rs, cs] += np.where(idx == t, grad_out, zero)
    return np.ascontiguousarray(gxp[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]])


def _avg_divisor(x_hw, k, s, p, out_hw, count_include_pad: bool, dtype) -> np.ndarray | float:
    """Number of cells each window averages over: ``kH*kW``, or only the real ones."""
    if count_include_pad:
        return float(k[0] * k[1])
    counts = []
    for axis in range(2):
        start = np.arange(out_hw[axis]) * s[axis] - p[axis]
        lo, hi = np.maximum(start, 0), np.minimum(start + k[axis], x_hw[axis])
        counts.append(hi - lo)
    return (counts[0][:, None] * counts[1][None, :]).astype(dtype)


def avg_pool2d(
    x: Any,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Average pooling, like ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        Zero border, at most half the kernel size.
    count_include_pad : bool
        If true (default) every window is divided by ``kH*kW``; otherwise by the number
        of real (non-padding) cells in it.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
    """
    x = _check_x(x)
    k, s, p, out_hw = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = pad_hw(x, ((p[0], p[0]), (p[1], p[1])))
    out = np.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    for _, rs, cs in _taps(k, s, out_hw):
        out += xp[:, :, rs, cs]
    out /= _avg_divisor(x.shape[2:], k, s, p, out_hw, bool(count_include_pad), x.dtype)
    return out


def avg_pool2d_backward(
    grad_out: Any,
    x_shape: tuple[int, int, int, int],
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_out : array_like, shape (N, C, H_out, W_out)
    x_shape : tuple (N, C, H, W)
        Shape of the forward input (its values are not needed).
    kernel_size, stride, padding, count_include_pad
        As given to :func:`avg_pool2d`.

    Returns
    -------
    grad_x : ndarray, shape (N, C, H, W)
        Each window spreads ``grad / divisor`` evenly over its cells; overlaps add up.
    """
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4:
        raise ValueError(f"x_shape: got {x_shape!r}; expected a tuple (N, C, H, W)")
    n = check_positive_int("x_shape", x_shape[0], minimum=0)
    c, h, w = (check_positive_int("x_shape", v) for v in x_shape[1:])
    k, s, p, out_hw = _pool_geometry((h, w), kernel_size, stride, padding)
    grad_out = _check_grad(grad_out, (n, c) + out_hw)
    g = grad_out / _avg_divisor((h, w), k, s, p, out_hw, bool(count_include_pad), grad_out.dtype)
    gxp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=grad_out.dtype)
    for _, rs, cs in _taps(k, s, out_hw):
        gxp[:, :, rs, cs] += g
    return np.ascontiguousarray(gxp[:, :, p[0] : p[0] + h, p[1] : p[1] + w])
