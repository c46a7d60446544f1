"""Index arithmetic and zero padding of NCHW arrays, shared by conv_lib's methods."""

from __future__ import annotations

import numpy as np

Pads = tuple[tuple[int, int], tuple[int, int]]


def out_len(n_padded: int, kernel: int, stride: int, dilation: int) -> int:
    """Output length along one axis for an already padded input length."""
    return (n_padded - dilation * (kernel - 1) - 1) // stride + 1


def tap_slice(start: int, count: int, stride: int) -> slice:
    """Slice selecting ``count`` elements ``start, start+stride, ...``."""
    return slice(start, start + stride * (count - 1) + 1, stride)


def pad_hw(x: np.ndarray, pads: Pads) -> np.ndarray:
    """Zero-pad the last two axes by ``((top, bottom), (left, right))``."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    out = np.zeros(x.shape[:-2] + (x.shape[-2] + pt + pb, x.shape[-1] + pl + pr), dtype=x.dtype)
    out[..., pt : pt + x.shape[-2], pl : pl + x.shape[-1]] = x
    return out


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    dtype = np.result_type(*arrays)
    return np.dtype(np.float64) if dtype.kind not in "f" else dtype


def component_window(hw: tuple[int, int], pads: Pads, stride: tuple[int, int], phase, first_row: int, shape):
    """Where the input lies in a window of one polyphase component of the padded image.

    Component ``(a, b)`` of ``x_pad`` (``x`` of spatial size ``hw`` zero-padded by ``pads``)
    is ``x_pad[a::s_h, b::s_w]``; its row ``q`` is input row ``a + s_h*q - pt`` and its
    column ``r`` input column ``b + s_w*r - pl``. For the window of ``shape = (rows, cols)``
    starting at component row ``first_row``, returns ``(rows_in, cols_in, x_rows, x_cols)``:
    the window's slices that hold input values and the input slices they hold, or
    ``None`` when the window holds none (only zeros of the padding)."""
    (h, w), ((pt, _), (pl, _)), (sh, sw), (a, b) = hw, pads, stride, phase
    rows, cols = shape
    q0 = min(max(first_row, -(-(pt - a) // sh)), first_row + rows)
    q1 = min(first_row + rows, -(-(pt + h - a) // sh))
    r0, r1 = max(0, -(-(pl - b) // sw)), min(cols, -(-(pl + w - b) // sw))
    if q1 <= q0 or r1 <= r0:
        return None
    return (
        slice(q0 - first_row, q1 - first_row),
        slice(r0, r1),
        tap_slice(a + sh * q0 - pt, q1 - q0, sh),
        tap_slice(b + sw * r0 - pl, r1 - r0, sw),
    )


def fill_component(grid: np.ndarray, x: np.ndarray, n0: int, pads: Pads, stride, phase, first_row: int):
    """``grid (m, C, rows, cols)`` <- rows ``first_row:`` of polyphase component ``phase``
    (:func:`component_window`) of images ``n0:n0+m`` of ``x`` zero-padded by ``pads``;
    only the zeros that the copy does not overwrite are written."""
    m = grid.shape[0]
    window = component_window(x.shape[2:], pads, stride, phase, first_row, grid.shape[2:])
    if window is None:
        grid[...] = 0
        return
    rows_in, cols_in, x_rows, x_cols = window
    grid[:, :, : rows_in.start] = 0
    grid[:, :, rows_in.stop :] = 0
    grid[:, :, rows_in, : cols_in.start] = 0
    grid[:, :, rows_in, cols_in.stop :] = 0
    grid[:, :, rows_in, cols_in] = x[n0 : n0 + m, :, x_rows, x_cols]
