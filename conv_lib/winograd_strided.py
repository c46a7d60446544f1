"""Winograd for strided layers: polyphase components, then ``F(3x3, 4x4)``.

A stride-``s`` layer reads only every ``s``-th row and column of the padded input for a
given kernel tap. Split the padded input into its ``s_h*s_w`` polyphase components
``x_pad[a::s_h, b::s_w]`` and the kernel the same way, ``w[a::s_h, b::s_w]``: tap
``(s_h*i + a, s_w*j + b)`` meets component ``(a, b)`` at offset ``(i, j)``, so the layer
is a **stride-1** correlation of the components (``C*s_h*s_w`` channels) with kernels of
``ceil(kH/s_h) x ceil(kW/s_w)`` (zero beyond the original kernel). For the 7x7 stride-2
stem of a ResNet that is a 4x4 stride-1 layer over 12 channels, which Winograd's
``F(3x3, 4x4)`` computes with 36 multiplications per 9 outputs and channel, 48 per
output over the 12 channels instead of the 147 of the direct sum.

``F(3, 4)`` uses the same interpolation points as ``F(4, 3)`` (0, 1, -1, 2, -2 and
infinity), so ``B^T`` is the same matrix, ``A^T`` is ``F(4, 3)``'s first three rows
(the last entry of its last row moved to the point at infinity) and ``G`` has a fourth
column (:func:`matrices_f34`). Its float32 rounding error stays within
:data:`conv_lib.winograd.FLOAT32_RTOL`, like ``F(4x4, 3x3)``'s.

Two paths compute the same sums: the transforms compiled by numba
(:mod:`conv_lib.winograd_kernels`, per chunk of tile rows), or NumPy
(tiles gathered by one strided copy, transforms as GEMMs with ``kron`` matrices) when
numba is missing or ``CONV_LIB_JIT=0``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from conv_lib import winograd_kernels
from conv_lib.layout import Pads, fill_component, out_len
from conv_lib.winograd import tile_row_chunks, transform_kernels, winograd_matrices
from conv_lib.workspace import run_chunks, thread_workspace

__all__ = [
    "MAX_POLYPHASE_KERNEL",
    "corr_strided_winograd",
    "matrices_f34",
    "polyphase_kernel_size",
    "supports",
]

# F(3, 4): points 0, 1, -1, 2, -2 and infinity (derived by solving for B^T given A^T
# and G, which gave F(4, 3)'s B^T; tests/test_winograd_strided.py checks the identity
# exactly, in fractions).
_AT34 = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 1]]
_G34 = [
    [1 / 4, 0, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6, 1 / 6],
    [1 / 24, 1 / 12, 1 / 6, 1 / 3],
    [1 / 24, -1 / 12, 1 / 6, -1 / 3],
    [0, 0, 0, 1],
]
_BT34 = winograd_matrices(4)[2].tolist()  # the same matrix as F(4, 3)
_M, _R, _ALPHA = 3, 4, 6  # output tile, kernel and input tile sizes of F(3, 4)
# Largest polyphase kernel (per axis) computed: kernels up to this many times the stride.
MAX_POLYPHASE_KERNEL = _R

# Elements of one unit's work arrays on the compiled path (V, the products and the
# output transform's two passes): about one core's L2 cache in float32.
_COMPILED_UNIT_ELEMENTS = 2**19
# On the NumPy path, as for conv_lib.winograd: few, large chunks (each costs a few
# dozen NumPy calls).
_CHUNK_ELEMENTS = 2**23


def matrices_f34() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The transforms of ``F(3, 4)``: ``A^T (3, 6)``, ``G (6, 4)``, ``B^T (6, 6)``.

    ``y = A^T [(G g) * (B^T d)]`` is the valid correlation of ``d`` (length 6) with ``g``
    (length 4): ``y[i] = sum_k d[i + k] g[k]``, 6 multiplications for 3 outputs.

    Returns
    -------
    AT, G, BT : ndarray (float64 copies)
    """
    return np.array(_AT34, dtype=float), np.array(_G34, dtype=float), np.array(_BT34, dtype=float)


def polyphase_kernel_size(kernel: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int]:
    """``(ceil(kH/s_h), ceil(kW/s_w))``: the kernel of the stride-1 layer over the
    polyphase components that a stride-``s`` layer with ``kernel`` is."""
    return -(-kernel[0] // stride[0]), -(-kernel[1] // stride[1])


def supports(kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> bool:
    """Whether this module computes the layer: dilation 1, a stride above 1 in some
    direction, and polyphase kernels of at most 4x4 (e.g. 7x7 or 8x8 at stride 2,
    11x11 at stride 4)."""
    kh, kw = polyphase_kernel_size(kernel, stride)
    return tuple(dilation) == (1, 1) and tuple(stride) != (1, 1) and kh <= _R and kw <= _R


@functools.lru_cache(maxsize=4)
def _kron(dtype_char: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    at, gm, bt = matrices_f34()
    dtype = np.dtype(dtype_char)
    return np.kron(at, at).astype(dtype), np.kron(gm, gm).astype(dtype), np.kron(bt, bt).astype(dtype)


class _Plan:
    """Geometry: the output of the strided layer in 3x3 tiles, and the zero-padded
    polyphase components that the tiles read (``3*th + 3`` rows, ``3*tw + 3`` columns)."""

    def __init__(
        self, x_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int], pads: Pads
    ) -> None:
        (pt, pb), (pl, pr) = pads
        self.stride = tuple(stride)
        self.phases = self.stride[0] * self.stride[1]
        self.ho = out_len(x_shape[2] + pt + pb, kernel[0], stride[0], 1)
        self.wo = out_len(x_shape[3] + pl + pr, kernel[1], stride[1], 1)
        self.th, self.tw = -(-self.ho // _M), -(-self.wo // _M)
        self.hp, self.wp = _M * self.th + _R - 1, _M * self.tw + _R - 1
        self.pads = pads


def _components(x: np.ndarray, plan: _Plan) -> np.ndarray:
    """``P (N, C*S, hp, wp)``: channel ``c*S + a*s_w + b`` is polyphase component
    ``(a, b)`` of channel ``c`` of ``x`` zero-padded by the layer's padding (and with
    zeros beyond it, up to the size the tiles read). ``S = s_h*s_w``; channel-major, so
    that the groups of a grouped layer stay contiguous."""
    n, c = x.shape[:2]
    sh, sw = plan.stride
    p = np.empty((n, c * plan.phases, plan.hp, plan.wp), dtype=x.dtype)
    if winograd_kernels.available():
        winograd_kernels.split_phases(x, plan.pads, plan.stride, p)
        return p
    for a in range(sh):
        for b in range(sw):
            fill_component(p[:, a * sw + b :: plan.phases], x, 0, plan.pads, plan.stride, (a, b), 0)
    return p


def _sub_kernels(w: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """``(O, C/g * S, 4, 4)``: the polyphase components of each kernel, zero-padded to
    4x4, in the channel order of :func:`_components`."""
    o, cg, kh, kw = w.shape
    sh, sw = stride
    sub = np.zeros((o, cg, sh, sw, _R, _R), dtype=w.dtype)
    for a in range(sh):
        for b in range(sw):
            part = w[:, :, a::sh, b::sw]
            sub[:, :, a, b, : part.shape[2], : part.shape[3]] = part
    return sub.reshape(o, cg * sh * sw, _R, _R)


def corr_strided_winograd(
    x: np.ndarray, pads: Pads, w: np.ndarray, stride: tuple[int, int], groups: int, budget: int,
    bias: Any = None,
) -> np.ndarray:  # fmt: skip
    """Cross-correlation of ``x (N, C, H, W)`` zero-padded by ``pads`` with ``w (O, C/g,
    kH, kW)`` at ``stride`` (dilation 1; :func:`supports`), plus ``bias (O,)`` if given,
    by polyphase components and ``F(3x3, 4x4)``; returns ``(N, O, H_out, W_out)``.

    ``x``, ``w`` and ``bias`` share a floating dtype (validated by the caller)."""
    x = np.ascontiguousarray(x)
    plan = _Plan(x.shape, w.shape[2:], stride, pads)
    n, o = x.shape[0], w.shape[0]
    out = np.empty((n, o, plan.ho, plan.wo), dtype=x.dtype)
    b = np.zeros(o, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    p = _components(x, plan)
    if winograd_kernels.available():
        u = winograd_kernels.transform_sub_kernels(w, plan.stride, _matrix_g(w.dtype.char), groups)
        units, workers = _compiled_units(n, plan.th, plan.tw, p.shape[1], o, p.itemsize, budget)
        winograd_kernels.strided_forward(p, u, b, out, units, plan.tw, workers, thread_workspace(p.dtype))
    else:
        u = transform_kernels(_sub_kernels(w, plan.stride), _kron(w.dtype.char)[1], groups)
        _run_numpy(p, u, b, out, plan, groups, budget)
    return out


@functools.lru_cache(maxsize=64)
def _compiled_units(n: int, th: int, tw: int, c: int, o: int, itemsize: int, budget: int):
    """The compiled path's units ``(k, 3)``: ``(image, first tile row, end)``, each of
    whose work arrays (V, 36*C' values per tile, and the products, 36*O) hold at most
    :data:`_COMPILED_UNIT_ELEMENTS` values and the budget's share of a thread; and how
    many threads' work arrays the budget holds."""
    per_row = 36 * (c + o) * tw
    chunks = tile_row_chunks(n, th, per_row, itemsize, budget, _COMPILED_UNIT_ELEMENTS)
    units = np.array([(i, t0, t1) for n0, n1, t0, t1 in chunks for i in range(n0, n1)], dtype=np.int64)
    units.flags.writeable = False
    workers = max(1, budget // max(1, per_row * int(units[0, 2] - units[0, 1]) * itemsize))
    return units, workers


@functools.lru_cache(maxsize=4)
def _matrix_g(dtype_char: str) -> np.ndarray:
    return np.array(_G34, dtype=np.dtype(dtype_char))


def _run_numpy(p, u, b, out, plan: _Plan, groups: int, budget: int) -> None:
    """Per chunk: the 6x6 tiles gathered by one strided copy, ``V = kron(B^T, B^T) D``,
    the 36 GEMMs, ``Y = kron(A^T, A^T) M`` and the 3x3 tiles copied into ``out``."""
    n, c = p.shape[:2]
    o = out.shape[1]
    cg = c // groups
    aa, _, bb = _kron(p.dtype.char)
    # per tile: D and V (36*C' each), the products (36*O), Y and its reordered copy (9*O each)
    per_row = (36 * (2 * c + o) + 18 * o) * plan.tw
    chunks = tile_row_chunks(n, plan.th, per_row, p.itemsize, budget, _CHUNK_ELEMENTS)
    s_n, s_c, s_h, s_w = p.strides

    def one_chunk(n0: int, n1: int, t0: int, t1: int) -> None:
        m, rows = n1 - n0, t1 - t0
        count = m * rows * plan.tw
        # tile (ty, tx) element (i, j) is P[n, c, 3*ty + i, 3*tx + j]
        tiles = np.lib.stride_tricks.as_strided(
            p[n0:n1, :, _M * t0 :],
            (_ALPHA, _ALPHA, c, m, rows, plan.tw),
            (s_h, s_w, s_c, s_n, _M * s_h, _M * s_w),
            writeable=False,
        )
        d = np.ascontiguousarray(tiles).reshape(36, c * count)
        v = (bb @ d).reshape(36, groups, cg, count)
        del d
        prod = np.matmul(u, v).reshape(36, o * count)
        del v
        y = (aa @ prod).reshape(_M, _M, o, m, rows, plan.tw)
        del prod
        y += b.reshape(o, 1, 1, 1)
        blocks = y.transpose(3, 2, 4, 0, 5, 1).reshape(m, o, _M * rows, _M * plan.tw)
        first, last = _M * t0, min(plan.ho, _M * t1)
        out[n0:n1, :, first:last] = blocks[:, :, : last - first, : plan.wo]

    def work(k0: int, k1: int) -> None:
        for chunk in chunks[k0:k1]:
            one_chunk(*chunk)  # its temporaries are freed before the next chunk's

    run_chunks(work, len(chunks))
