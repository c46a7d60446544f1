"""Winograd for strided layers: polyphase components, then ``F(4x4, 4x4)``.

A stride-``s`` layer reads only every ``s``-th row and column of the padded input for a
given kernel tap. Split the padded input into its ``s_h*s_w`` polyphase components
``x_pad[a::s_h, b::s_w]`` and the kernel the same way, ``w[a::s_h, b::s_w]``: tap
``(s_h*i + a, s_w*j + b)`` meets component ``(a, b)`` at offset ``(i, j)``, so the layer
is a **stride-1** correlation of the components (``C*s_h*s_w`` channels) with kernels of
``ceil(kH/s_h) x ceil(kW/s_w)`` (zero beyond the original kernel). For the 7x7 stride-2
stem of a ResNet that is a 4x4 stride-1 layer over 12 channels, which Winograd's
``F(4x4, 4x4)`` computes with 49 multiplications per 16 outputs and channel, 36.75 per
output over the 12 channels instead of the 147 of the direct sum.

``F(4, 4)`` interpolates at 0, 1, -1, 1/2, -1/2, -2 and infinity (:func:`matrices_f44`;
of the sets of six finite points with 0, 1 and -1 that were tried, the one with the
smallest float32 error). Its float32 rounding error stays within
:data:`conv_lib.winograd.FLOAT32_RTOL` on typical data, like ``F(4x4, 3x3)``'s (1e-6 to
1e-5 of the largest output); inputs far from zero mean with kernels that sum to zero
(a large value cancelled) can exceed it.

Two paths compute the same sums: the transforms compiled by numba
(:mod:`conv_lib.winograd_kernels`, per unit of tile rows, on numba's threads), or NumPy
(tiles gathered by one strided copy, transforms as GEMMs with ``kron`` matrices) when
numba is missing or ``CONV_LIB_JIT=0``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from conv_lib import winograd_kernels
from conv_lib.layout import Pads, fill_component, out_len
from conv_lib.winograd import tile_row_chunks, transform_kernels
from conv_lib.workspace import run_chunks, thread_workspace

__all__ = [
    "MAX_POLYPHASE_KERNEL",
    "MULTIPLICATIONS_PER_OUTPUT",
    "corr_strided_winograd",
    "matrices_f44",
    "polyphase_kernel_size",
    "supports",
]

# F(4, 4), points 0, 1, -1, 1/2, -1/2, -2 and infinity: A^T[i, j] = p_j**i, G[j, k] =
# p_j**k / prod_{l != j} (p_j - p_l), and B^T solved from the identity (exactly, in
# fractions; tests/test_winograd_strided.py checks it). Fractions as (numerator,
# denominator) so that the matrices are exact in float64.
_AT44 = [
    [1, 1, 1, 1, 1, 1, 0],
    [0, 1, -1, (1, 2), (-1, 2), -2, 0],
    [0, 1, 1, (1, 4), (1, 4), 4, 0],
    [0, 1, -1, (1, 8), (-1, 8), -8, 1],
]
_G44 = [
    [2, 0, 0, 0],
    [(2, 9), (2, 9), (2, 9), (2, 9)],
    [(2, 3), (-2, 3), (2, 3), (-2, 3)],
    [(-16, 15), (-8, 15), (-4, 15), (-2, 15)],
    [(-16, 9), (8, 9), (-4, 9), (2, 9)],
    [(-2, 45), (4, 45), (-8, 45), (16, 45)],
    [0, 0, 0, 1],
]
_BT44 = [
    [(1, 2), (1, 4), (-5, 2), (-5, 4), 2, 1, 0],
    [0, (-1, 2), (-3, 4), (7, 4), 3, 1, 0],
    [0, (1, 2), (-1, 4), (-9, 4), 1, 1, 0],
    [0, -1, (-5, 2), 0, (5, 2), 1, 0],
    [0, 1, (-3, 2), -2, (3, 2), 1, 0],
    [0, (1, 4), 0, (-5, 4), 0, 1, 0],
    [0, (1, 2), (1, 4), (-5, 2), (-5, 4), 2, 1],
]
_M, _R, _ALPHA = 4, 4, 7  # output tile, kernel and input tile sizes of F(4, 4)
# Multiplications per output and input channel of the stride-1 layer (per polyphase
# component): 49 per 4x4 output tile.
MULTIPLICATIONS_PER_OUTPUT = _ALPHA**2 / _M**2
# Largest polyphase kernel (per axis) computed: kernels up to this many times the stride.
MAX_POLYPHASE_KERNEL = _R

# Elements of one unit's work arrays on the compiled path (V, the products and the
# output transform's two passes): about one core's L2 cache in float32.
_COMPILED_UNIT_ELEMENTS = 2**19
# On the NumPy path, as for conv_lib.winograd: few, large chunks (each costs a few
# dozen NumPy calls).
_CHUNK_ELEMENTS = 2**23


def matrices_f44(exact: bool = False) -> tuple[Any, Any, Any]:
    """The transforms of ``F(4, 4)``: ``A^T (4, 7)``, ``G (7, 4)``, ``B^T (7, 7)``.

    ``y = A^T [(G g) * (B^T d)]`` is the valid correlation of ``d`` (length 7) with ``g``
    (length 4): ``y[i] = sum_k d[i + k] g[k]``, 7 multiplications for 4 outputs.

    Parameters
    ----------
    exact : bool
        Return lists of :class:`fractions.Fraction` instead of float64 arrays.

    Returns
    -------
    AT, G, BT : ndarray (float64 copies), or lists of lists of Fraction
    """
    from fractions import Fraction

    def value(entry):
        return Fraction(*entry) if isinstance(entry, tuple) else Fraction(entry)

    mats = [[[value(e) for e in row] for row in m] for m in (_AT44, _G44, _BT44)]
    if exact:
        return tuple(mats)
    return tuple(np.array([[float(e) for e in row] for row in m]) for m in mats)


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
    at, gm, bt = matrices_f44()
    dtype = np.dtype(dtype_char)
    return np.kron(at, at).astype(dtype), np.kron(gm, gm).astype(dtype), np.kron(bt, bt).astype(dtype)


class _Plan:
    """Geometry: the output of the strided layer in 4x4 tiles, and the zero-padded
    polyphase components that the tiles read (``4*th + 3`` rows, ``4*tw + 3`` columns;
    on the compiled path ``4*(tw + 1)`` columns, split by phase modulo 4)."""

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
    that the groups of a grouped layer stay contiguous. (The compiled path makes its
    own, with the columns split by phase: :func:`conv_lib.winograd_kernels.strided_layer`.)"""
    n, c = x.shape[:2]
    sh, sw = plan.stride
    p = np.empty((n, c * plan.phases, plan.hp, plan.wp), dtype=x.dtype)
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
    by polyphase components and ``F(4x4, 4x4)``; returns ``(N, O, H_out, W_out)``.

    ``x``, ``w`` and ``bias`` share a floating dtype (validated by the caller)."""
    x = np.ascontiguousarray(x)
    plan = _Plan(x.shape, w.shape[2:], stride, pads)
    n, o = x.shape[0], w.shape[0]
    out = np.empty((n, o, plan.ho, plan.wo), dtype=x.dtype)
    b = np.zeros(o, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    if winograd_kernels.available():
        c = x.shape[1] * plan.phases
        p = np.empty((n, c, plan.hp, _M * (plan.tw + 1)), dtype=x.dtype)
        u = np.empty((_ALPHA**2, groups, o // groups, c // groups), dtype=x.dtype)
        units, workers = _compiled_units(n, plan.th, plan.tw, c, o, x.itemsize, budget)
        winograd_kernels.strided_layer(
            x, plan.pads, plan.stride, w, _matrix_g(x.dtype.char), b, p, u, out, units, plan.tw, workers,
            thread_workspace(x.dtype),
        )  # fmt: skip
    else:
        p = _components(x, plan)
        u = transform_kernels(_sub_kernels(w, plan.stride), _kron(w.dtype.char)[1], groups)
        _run_numpy(p, u, b, out, plan, groups, budget)
    return out


@functools.lru_cache(maxsize=64)
def _compiled_units(n: int, th: int, tw: int, c: int, o: int, itemsize: int, budget: int):
    """The compiled path's units ``(k, 3)``: ``(image, first tile row, end)``, each of
    whose work arrays (V, 49*C' values per tile, and the products, 49*O) hold at most
    :data:`_COMPILED_UNIT_ELEMENTS` values and the budget's share of a thread; and how
    many threads' work arrays the budget holds."""
    per_row = _ALPHA**2 * (c + o) * tw
    chunks = tile_row_chunks(n, th, per_row, itemsize, budget, _COMPILED_UNIT_ELEMENTS)
    bands = sum(1 for chunk in chunks if chunk[0] == 0)  # bands per image (1: whole images)
    # the same number of bands, with rows shared out evenly (numba's threads take equal
    # numbers of units, so that they finish together)
    units = np.array(
        [(i, th * k // bands, th * (k + 1) // bands) for i in range(n) for k in range(bands)], dtype=np.int64
    )
    units.flags.writeable = False
    rows = -(-th // bands)
    workers = max(1, budget // max(1, per_row * rows * itemsize))
    return units, workers


@functools.lru_cache(maxsize=4)
def _matrix_g(dtype_char: str) -> np.ndarray:
    return matrices_f44()[1].astype(np.dtype(dtype_char))


def _run_numpy(p, u, b, out, plan: _Plan, groups: int, budget: int) -> None:
    """Per chunk: the 7x7 tiles gathered by one strided copy, ``V = kron(B^T, B^T) D``,
    the 49 GEMMs, ``Y = kron(A^T, A^T) M`` and the 4x4 tiles copied into ``out``."""
    n, c = p.shape[:2]
    o = out.shape[1]
    cg = c // groups
    aa, _, bb = _kron(p.dtype.char)
    # per tile: D and V (A*A*C' each), the products (A*A*O), Y and its reordered copy
    # (M*M*O each)
    per_row = (_ALPHA**2 * (2 * c + o) + 2 * _M**2 * o) * plan.tw
    chunks = tile_row_chunks(n, plan.th, per_row, p.itemsize, budget, _CHUNK_ELEMENTS)
    s_n, s_c, s_h, s_w = p.strides

    def one_chunk(n0: int, n1: int, t0: int, t1: int) -> None:
        m, rows = n1 - n0, t1 - t0
        count = m * rows * plan.tw
        # tile (ty, tx) element (i, j) is P[n, c, 4*ty + i, 4*tx + j]
        tiles = np.lib.stride_tricks.as_strided(
            p[n0:n1, :, _M * t0 :],
            (_ALPHA, _ALPHA, c, m, rows, plan.tw),
            (s_h, s_w, s_c, s_n, _M * s_h, _M * s_w),
            writeable=False,
        )
        d = np.ascontiguousarray(tiles).reshape(_ALPHA**2, c * count)
        v = (bb @ d).reshape(_ALPHA**2, groups, cg, count)
        del d
        prod = np.matmul(u, v).reshape(_ALPHA**2, o * count)
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
