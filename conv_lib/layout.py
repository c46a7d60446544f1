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
