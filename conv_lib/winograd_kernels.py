"""Compiled transforms of ``F(4x4, 3x3)`` for :mod:`conv_lib.winograd`, and of
``F(4x4, 4x4)`` for :mod:`conv_lib.winograd_strided` (numba).

:mod:`conv_lib.winograd` computes Winograd's algorithm with NumPy alone: the tiles are
gathered by strided copies and transformed by GEMMs with the 36x36 matrix
``kron(B^T, B^T)``. Those copies and transform GEMMs cost more than the 36 GEMMs that
do the layer's multiplications (``bench/profile_layers.py``). This module does the
same transforms as loops compiled by numba, one pass over the data each:

* :func:`input_transform`: ``V = B^T d B`` of every input tile of a chunk, read
  straight from ``x`` (the padding is never materialised), in the layout of the GEMMs,
  ``V (36, C, tiles)``;
* :func:`output_transform`: ``Y = A^T M A + bias`` of every product tile, written
  straight into the result;
* :func:`grad_output_transform`: ``Z = A dY A^T`` of every tile of ``grad_out`` (the
  adjoint of the output transform, for the weight gradient), and the bias gradient.

For strided layers, :func:`strided_layer` computes a whole layer by ``F(4x4, 4x4)`` in
one call on numba's threads (``parallel=True``): the polyphase components of the input
(columns split by phase modulo 4), the transformed sub-kernels, then per unit of tile
rows the input transform, the 49 GEMMs (BLAS, through numba's ``np.dot``) and the
output transform, in work arrays that stay in the core's cache.

For 3x3 layers the GEMMs between them stay NumPy ``matmul`` (BLAS). The transforms are the 1-D
``F(4, 3)`` transforms applied along rows then columns, with ``B^T``, ``A^T`` written
out as additions and multiplications by 2, 4, 5 and 8 (their entries).

The kernels are compiled on first use, once per dtype and process (about 3 s for the
forward's, 1.5 s more for the weight gradient's, about 10 s for the strided layer's, on
the course's machine). numba is
optional: :func:`available` is false when it is not installed or when the environment
sets ``CONV_LIB_JIT=0`` (the course's grading sandbox does, so that a student's call
never waits for the compiler), and :mod:`conv_lib.winograd` then uses its NumPy path.

Layout. A chunk is images ``n0:n1`` and tile rows ``t0:t1`` (``nt`` of them) of a layer
whose output has ``tw`` tiles per row; tile ``(n, ty, tx)`` of the chunk is column
``((n - n0)*nt + ty)*tw + tx`` of ``V``, ``M`` and ``Z``. For one image and channel,
the padded band is split into its 4x4 polyphase components (column phase first:
``xq[b, a, Y*tw + X]`` is padded element ``(4*Y + a, 4*X + b)``), so that every step is a
loop over one long contiguous index, which the compiler vectorises; the two padded
columns right of the last tile of each row (``4*tw``, ``4*tw + 1``) are kept apart
(``edge``) and the last tile of each row is corrected with them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np

from conv_lib.workspace import single_threaded_blas, worker_count

__all__ = [
    "available",
    "grad_output_transform",
    "input_transform",
    "kernels",
    "numpy_transforms",
    "output_transform",
    "strided_layer",
]


def available() -> bool:
    """Whether the compiled kernels can be used: numba is installed and the environment
    does not set ``CONV_LIB_JIT=0``."""
    return os.environ.get("CONV_LIB_JIT", "1") != "0" and _numba_installed()


@functools.lru_cache(maxsize=1)
def _numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


@contextlib.contextmanager
def numpy_transforms() -> Iterator[None]:
    """Within the ``with`` block, ``method="winograd"`` runs on its NumPy path (sets
    ``CONV_LIB_JIT=0`` in the environment, then puts back what was there), e.g. to
    compare the two paths. The environment is the process's: not for use in threads."""
    before = os.environ.get("CONV_LIB_JIT")
    os.environ["CONV_LIB_JIT"] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["CONV_LIB_JIT"]
        else:
            os.environ["CONV_LIB_JIT"] = before


_compile_lock = threading.Lock()
# Calls that run on numba's threads, one at a time: numba's "workqueue" threading layer
# (used when neither OpenMP nor TBB is installed) does not allow two at once.
_parallel_lock = threading.Lock()

# Sub-kernels transformed at a time (whole filters, at least one) by each thread.
_PAIR_VALUES = 256
# Values of the products per pass of the strided output transform (its two work arrays,
# 27 values each, then stay in a core's L1 cache).
_PASS_VALUES = 128


def kernels(dtype_char: str) -> SimpleNamespace:
    """The kernels for one float dtype (``"f"`` or ``"d"``); numba compiles each on its
    first call (under numba's own lock when two threads call it at once).

    The constants are scalars of that dtype, so that float32 data is transformed in
    float32 (a Python ``int`` times a float32 would be float64 in numba). conv_lib's
    threads ask for the kernels at the same time: one set per dtype is made, under a
    lock, so that each kernel is compiled once."""
    with _compile_lock:
        return _kernels(dtype_char)


@functools.lru_cache(maxsize=4)
def _kernels(dtype_char: str) -> SimpleNamespace:
    from numba import njit, prange

    t = np.dtype(dtype_char).type
    c2, c4, c5, c8 = t(2), t(4), t(5), t(8)
    jit = njit(nogil=True, cache=False)
    parallel_jit = njit(nogil=True, cache=False, parallel=True)
    inline = njit(inline="always")

    @inline
    def bt(d0, d1, d2, d3, d4, d5):
        """``B^T d`` of ``F(4, 3)``: 6 values of the input to 6 transformed values."""
        return (
            c4 * d0 - c5 * d2 + d4,
            d3 + d4 - c4 * (d1 + d2),
            c4 * (d1 - d2) - d3 + d4,
            c2 * (d3 - d1) - d2 + d4,
            c2 * (d1 - d3) - d2 + d4,
            c4 * d1 - c5 * d3 + d5,
        )

    @inline
    def at(m0, m1, m2, m3, m4, m5):
        """``A^T m``: 6 products to the 4 outputs of a tile row or column."""
        e, f, g, q = m1 + m2, m1 - m2, m3 + m4, m3 - m4
        return m0 + e + g, f + c2 * q, e + c4 * g, f + c8 * q + m5

    @inline
    def a6(y0, y1, y2, y3):
        """``A y`` (the adjoint of ``A^T``): 4 values of ``grad_out`` to 6."""
        even, odd = y0 + y2, y1 + y3
        even4, odd8 = y0 + c4 * y2, c2 * y1 + c8 * y3
        return y0, even + odd, even - odd, even4 + odd8, even4 - odd8, y3

    @jit
    def split_band(x, n, c, t0, nt, pt, pl, tw, xq, edge):
        """``xq (4, 4, (nt+1)*tw + 1)``, ``edge (2, 4, nt+1)`` <- the 4x4 polyphase
        components of rows ``4*t0 : 4*(t0+nt+1)`` of image ``n``, channel ``c``, of
        ``x`` zero-padded by ``pt`` rows above and ``pl`` columns on the left. The one
        value after the last row (read by :func:`rows_bt` for the last tile, whose
        result it then corrects) is set to zero."""
        h, w = x.shape[2], x.shape[3]
        for b in range(4):
            for a in range(4):
                xq[b, a, (nt + 1) * tw] = 0
        for a in range(4):
            for row in range(nt + 1):
                r = 4 * (t0 + row) + a - pt
                o0 = row * tw
                for b in range(4):
                    for k in range(tw):
                        xq[b, a, o0 + k] = 0
                edge[0, a, row] = 0
                edge[1, a, row] = 0
                if r >= 0 and r < h:
                    for j in range(w):
                        jj = j + pl
                        col = jj >> 2
                        if col < tw:
                            xq[jj & 3, a, o0 + col] = x[n, c, r, j]
                        elif jj - 4 * tw < 2:
                            edge[jj - 4 * tw, a, row] = x[n, c, r, j]

    @jit
    def rows_bt(xq, edge, tw, length, hb):
        """``hb[nu, a, i] = (B^T d)`` along the row of each tile: for tile column ``X``
        of phase row ``Y`` (``i = Y*tw + X``), ``d = padded row (4*Y + a), columns
        4*X .. 4*X + 5``."""
        for a in range(4):
            x0, x1, x2, x3 = xq[0, a], xq[1, a], xq[2, a], xq[3, a]
            h0, h1, h2, h3, h4, h5 = hb[0, a], hb[1, a], hb[2, a], hb[3, a], hb[4, a], hb[5, a]
            for i in range(length):
                e = bt(x0[i], x1[i], x2[i], x3[i], x0[i + 1], x1[i + 1])
                h0[i], h1[i], h2[i], h3[i], h4[i], h5[i] = e
            for row in range(length // tw):  # the last tile of each row: its columns 4, 5
                i = row * tw + tw - 1
                h0[i], h1[i], h2[i], h3[i], h4[i], h5[i] = bt(
                    x0[i], x1[i], x2[i], x3[i], edge[0, a, row], edge[1, a, row]
                )

    @jit
    def cols_bt(hb, v, c, k0, count, tw):
        """``v[6*xi + nu, c, k0 + k] = (B^T h)[xi]`` down the column of each tile: tile
        ``k = ty*tw + tx`` reads ``hb[nu, a % 4, k + (a // 4)*tw]``, ``a = 0..5``."""
        cols = slice(k0, k0 + count)
        for nu in range(6):
            h0, h1, h2, h3 = hb[nu, 0], hb[nu, 1], hb[nu, 2], hb[nu, 3]
            v0, v1, v2 = v[nu, c, cols], v[6 + nu, c, cols], v[12 + nu, c, cols]
            v3, v4, v5 = v[18 + nu, c, cols], v[24 + nu, c, cols], v[30 + nu, c, cols]
            for k in range(count):
                e = bt(h0[k], h1[k], h2[k], h3[k], h0[k + tw], h1[k + tw])
                v0[k], v1[k], v2[k], v3[k], v4[k], v5[k] = e

    @jit
    def input_transform(x, n0, n1, t0, t1, pt, pl, tw, v, xq, hb, edge):
        nt = t1 - t0
        count = nt * tw
        for n in range(n0, n1):
            for c in range(x.shape[1]):
                split_band(x, n, c, t0, nt, pt, pl, tw, xq, edge)
                rows_bt(xq, edge, tw, (nt + 1) * tw, hb)
                cols_bt(hb, v, c, (n - n0) * count, count, tw)

    @jit
    def cols_at(mp, o, k0, count, s):
        """``s[xi, j, k] = (A^T m)[j]`` along the row ``xi`` of product tile ``k``."""
        cols = slice(k0, k0 + count)
        for xi in range(6):
            p = 6 * xi
            r0, r1, r2 = mp[p, o, cols], mp[p + 1, o, cols], mp[p + 2, o, cols]
            r3, r4, r5 = mp[p + 3, o, cols], mp[p + 4, o, cols], mp[p + 5, o, cols]
            s0, s1, s2, s3 = s[xi, 0], s[xi, 1], s[xi, 2], s[xi, 3]
            for k in range(count):
                s0[k], s1[k], s2[k], s3[k] = at(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k])

    @jit
    def rows_at(s, bias, count, y):
        """``y[i, j, k] = (A^T s)[i] + bias`` down the column ``j`` of tile ``k``."""
        for j in range(4):
            r0, r1, r2, r3, r4, r5 = s[0, j], s[1, j], s[2, j], s[3, j], s[4, j], s[5, j]
            y0, y1, y2, y3 = y[0, j], y[1, j], y[2, j], y[3, j]
            for k in range(count):
                e0, e1, e2, e3 = at(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k])
                y0[k], y1[k], y2[k], y3[k] = e0 + bias, e1 + bias, e2 + bias, e3 + bias

    @jit
    def write_tiles(y, out, n, o, t0, nt, tw):
        """Output rows of tile rows ``t0 : t0+nt`` of ``out[n, o]`` <- tiles ``y``."""
        ho, wo = out.shape[2], out.shape[3]
        for ty in range(nt):
            for i in range(4):
                row = 4 * (t0 + ty) + i
                if row < ho:
                    dst = out[n, o, row]
                    src = y[i]
                    for col in range(wo):
                        dst[col] = src[col & 3, ty * tw + (col >> 2)]

    @jit
    def output_transform(mp, bias, out, n0, n1, t0, t1, tw, s, y):
        nt = t1 - t0
        count = nt * tw
        for n in range(n0, n1):
            for o in range(out.shape[1]):
                cols_at(mp, o, (n - n0) * count, count, s)
                rows_at(s, bias[o], count, y)
                write_tiles(y, out, n, o, t0, nt, tw)

    @jit
    def read_tiles(g, n, o, t0, nt, tw, y):
        """``y[i, j, ty*tw + tx] = g[n, o, 4*(t0+ty) + i, 4*tx + j]`` (0 outside ``g``);
        returns the sum of the values read."""
        ho, wo = g.shape[2], g.shape[3]
        total = 0.0
        for ty in range(nt):
            for i in range(4):
                row = 4 * (t0 + ty) + i
                dst = y[i]
                k0 = ty * tw
                if row < ho:
                    src = g[n, o, row]
                    for col in range(wo):
                        value = src[col]
                        dst[col & 3, k0 + (col >> 2)] = value
                        total += value
                    for col in range(wo, 4 * tw):
                        dst[col & 3, k0 + (col >> 2)] = 0
                else:
                    for j in range(4):
                        for k in range(tw):
                            dst[j, k0 + k] = 0
        return total

    @jit
    def a_rows(y, count, s):
        """``s[xi, j, k] = (A y)[xi]`` down the column ``j`` of tile ``k``, ``A = (A^T)^T``."""
        for j in range(4):
            y0, y1, y2, y3 = y[0, j], y[1, j], y[2, j], y[3, j]
            s0, s1, s2, s3, s4, s5 = s[0, j], s[1, j], s[2, j], s[3, j], s[4, j], s[5, j]
            for k in range(count):
                s0[k], s1[k], s2[k], s3[k], s4[k], s5[k] = a6(y0[k], y1[k], y2[k], y3[k])

    @jit
    def a_cols(s, z, o, k0, count):
        """``z[6*xi + nu, o, k0 + k] = (A s)[nu]`` along the row ``xi`` of tile ``k``."""
        cols = slice(k0, k0 + count)
        for xi in range(6):
            p = 6 * xi
            y0, y1, y2, y3 = s[xi, 0], s[xi, 1], s[xi, 2], s[xi, 3]
            z0, z1, z2 = z[p, o, cols], z[p + 1, o, cols], z[p + 2, o, cols]
            z3, z4, z5 = z[p + 3, o, cols], z[p + 4, o, cols], z[p + 5, o, cols]
            for k in range(count):
                z0[k], z1[k], z2[k], z3[k], z4[k], z5[k] = a6(y0[k], y1[k], y2[k], y3[k])

    @jit
    def grad_output_transform(g, n0, n1, t0, t1, tw, z, y, s, grad_b):
        nt = t1 - t0
        count = nt * tw
        for n in range(n0, n1):
            for o in range(g.shape[1]):
                grad_b[o] += read_tiles(g, n, o, t0, nt, tw, y)
                a_rows(y, count, s)
                a_cols(s, z, o, (n - n0) * count, count)

    # F(4x4, 4x4), for strided layers (conv_lib.winograd_strided): 7x7 tiles stepping by
    # 4 over the zero-padded polyphase components, whose columns are split by phase
    # modulo 4 (p[n, c, row, q*nq + X] is column 4*X + q), so that every pass is a loop
    # over one contiguous index. Points 0, 1, -1, 1/2, -1/2, -2 and infinity.
    h2, h4, h8, q3, q5, q7, q9 = t(0.5), t(0.25), t(0.125), t(0.75), t(1.25), t(1.75), t(2.25)
    c3, c5h, c15h = t(3), t(2.5), t(1.5)

    @inline
    def bt7(d0, d1, d2, d3, d4, d5, d6):
        """``B^T d`` of ``F(4, 4)``: 7 values of the input to 7 transformed values."""
        return (
            h2 * d0 + h4 * d1 - c5h * d2 - q5 * d3 + c2 * d4 + d5,
            q7 * d3 + c3 * d4 + d5 - h2 * d1 - q3 * d2,
            h2 * d1 - h4 * d2 - q9 * d3 + d4 + d5,
            c5h * (d4 - d2) - d1 + d5,
            d1 - c15h * d2 - c2 * d3 + c15h * d4 + d5,
            h4 * d1 - q5 * d3 + d5,
            h2 * d1 + h4 * d2 - c5h * d3 - q5 * d4 + c2 * d5 + d6,
        )

    @inline
    def at4(m0, m1, m2, m3, m4, m5, m6):
        """``A^T m`` of ``F(4, 4)``: 7 products to 4 outputs."""
        e, f, g, h = m1 + m2, m1 - m2, m3 + m4, m3 - m4
        return m0 + e + g + m5, f + h2 * h - c2 * m5, e + h4 * g + c4 * m5, f + h8 * h - c8 * m5 + m6

    @jit
    def input_tiles44(p, n, t0, t1, tw, v, h):
        """``v[7*a + b, c, (ty - t0)*tw + tx] = (B^T d B)[a, b]`` of the 7x7 tile ``d`` at
        rows ``4*ty``, columns ``4*tx`` of component ``c`` of image ``n`` of ``p``; ``h
        (7, 4*nq)``: one tile row after the pass down its 7 rows (``p``'s column layout)."""
        nq = p.shape[3] // 4
        for c in range(p.shape[1]):
            for ty in range(t0, t1):
                k0 = (ty - t0) * tw
                r = 4 * ty
                d0, d1, d2, d3 = p[n, c, r], p[n, c, r + 1], p[n, c, r + 2], p[n, c, r + 3]
                d4, d5, d6 = p[n, c, r + 4], p[n, c, r + 5], p[n, c, r + 6]
                g0, g1, g2, g3, g4, g5, g6 = h[0], h[1], h[2], h[3], h[4], h[5], h[6]
                for col in range(4 * nq):
                    g0[col], g1[col], g2[col], g3[col], g4[col], g5[col], g6[col] = bt7(
                        d0[col], d1[col], d2[col], d3[col], d4[col], d5[col], d6[col]
                    )
                for a in range(7):
                    e0, e1 = h[a, 0:nq], h[a, nq : 2 * nq]  # column phases 0..3
                    e2, e3 = h[a, 2 * nq : 3 * nq], h[a, 3 * nq : 4 * nq]
                    cols = slice(k0, k0 + tw)
                    v0, v1, v2 = v[7 * a, c, cols], v[7 * a + 1, c, cols], v[7 * a + 2, c, cols]
                    v3, v4 = v[7 * a + 3, c, cols], v[7 * a + 4, c, cols]
                    v5, v6 = v[7 * a + 5, c, cols], v[7 * a + 6, c, cols]
                    for tx in range(tw):  # columns 4*tx .. 4*tx + 6
                        v0[tx], v1[tx], v2[tx], v3[tx], v4[tx], v5[tx], v6[tx] = bt7(
                            e0[tx], e1[tx], e2[tx], e3[tx], e0[tx + 1], e1[tx + 1], e2[tx + 1]
                        )

    @jit
    def columns_at4(m, k0, k1, s, y):
        """``y[i, j, k - k0] = (A^T M A)[i, j]`` of the product tiles ``m[:, k0:k1]``
        (``m (49, K)``: ``k`` over output channels and tiles, flat); ``s (7, 4, >= k1 -
        k0)`` holds the pass along the rows. Each loop is over one contiguous index."""
        length = k1 - k0
        for x in range(7):
            q = 7 * x
            r0, r1, r2, r3 = m[q, k0:k1], m[q + 1, k0:k1], m[q + 2, k0:k1], m[q + 3, k0:k1]
            r4, r5, r6 = m[q + 4, k0:k1], m[q + 5, k0:k1], m[q + 6, k0:k1]
            s0, s1, s2, s3 = s[x, 0], s[x, 1], s[x, 2], s[x, 3]
            for k in range(length):
                s0[k], s1[k], s2[k], s3[k] = at4(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k], r6[k])
        for j in range(4):
            r0, r1, r2, r3 = s[0, j], s[1, j], s[2, j], s[3, j]
            r4, r5, r6 = s[4, j], s[5, j], s[6, j]
            y0, y1, y2, y3 = y[0, j], y[1, j], y[2, j], y[3, j]
            for k in range(length):
                y0[k], y1[k], y2[k], y3[k] = at4(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k], r6[k])

    @jit
    def write_tiles4(y, bias, out, n, o0, o1, t0, t1, tw):
        """Output rows of tile rows ``t0:t1`` of channels ``o0:o1`` of ``out[n]`` <- ``y +
        bias``: tile ``(ty, tx)`` of channel ``o`` is column ``((o - o0)*nt + ty - t0)*tw
        + tx`` of ``y (4, 4, K)``; its 4x4 outputs are stored interleaved (column ``4*tx
        + j``)."""
        ho, wo = out.shape[2], out.shape[3]
        count = (t1 - t0) * tw
        full = min(wo // 4, tw)  # tiles whose 4 columns all exist
        for o in range(o0, o1):
            b = bias[o]
            for ty in range(t0, t1):
                k0 = (o - o0) * count + (ty - t0) * tw
                for i in range(min(4, ho - 4 * ty)):
                    d = out[n, o, 4 * ty + i]
                    a0, a1 = y[i, 0, k0 : k0 + tw], y[i, 1, k0 : k0 + tw]
                    a2, a3 = y[i, 2, k0 : k0 + tw], y[i, 3, k0 : k0 + tw]
                    for k in range(full):
                        d[4 * k] = a0[k] + b
                        d[4 * k + 1] = a1[k] + b
                        d[4 * k + 2] = a2[k] + b
                        d[4 * k + 3] = a3[k] + b
                    for col in range(4 * full, wo):  # the tile cut by the right edge
                        d[col] = y[i, col - 4 * full, k0 + full] + b

    @jit
    def strided_forward(p, u, bias, out, units, tw, v, m, s, y, h):
        """For each unit ``(n, t0, t1)`` of ``units``: ``V = B^T d B`` of the tiles of
        tile rows ``t0:t1`` of image ``n`` of ``p``, the 49 (times groups) GEMMs ``U V``
        (BLAS, through ``np.dot``), then ``A^T M A + bias`` into ``out``, a few output
        channels at a time so that the transform's passes stay in the L1 cache. ``v``,
        ``m``: flat work arrays for the largest unit; ``s (7, 4, L)``, ``y (4, 4, L)``:
        for ``L`` values of the products; ``h``: see :func:`input_tiles44`."""
        c, o = p.shape[1], out.shape[1]
        groups, og, cg = u.shape[1], u.shape[2], u.shape[3]
        for unit in range(units.shape[0]):
            n, t0, t1 = units[unit, 0], units[unit, 1], units[unit, 2]
            count = (t1 - t0) * tw
            vc = v[: 49 * c * count].reshape(49, c, count)
            input_tiles44(p, n, t0, t1, tw, vc, h)
            vg = vc.reshape(49, groups, cg, count)
            mg = m[: 49 * o * count].reshape(49, groups, og, count)
            for q in range(49):
                for g in range(groups):
                    np.dot(u[q, g], vg[q, g], mg[q, g])
            mk = mg.reshape(49, o * count)
            step = max(1, s.shape[2] // count)  # output channels per pass
            for o0 in range(0, o, step):
                o1 = min(o, o0 + step)
                columns_at4(mk, o0 * count, o1 * count, s, y)
                write_tiles4(y, bias, out, n, o0, o1, t0, t1, tw)

    @jit
    def split_phases(x, pt, pl, sh, sw, p, line, i0, i1):
        """``p[n, c*S + a*sw + b, i, q*nq + X] = x[n, c, sh*i + a - pt, sw*(4*X + q) + b -
        pl]`` (zero outside ``x``) for the row phases ``i0 <= (n*C + c)*sh + a < i1``: the
        ``S = sh*sw`` polyphase components of each channel of ``x`` zero-padded by ``pt``
        rows above and ``pl`` columns on the left, their columns split by phase modulo 4.
        ``line (4*nq,)``: one row of a component."""
        c_in, hx, wx = x.shape[1], x.shape[2], x.shape[3]
        rows, nq = p.shape[2], p.shape[3] // 4
        cols = 4 * nq
        zero = p.dtype.type(0)
        for item in range(i0, i1):
            nc, a = item // sh, item % sh
            n, c = nc // c_in, nc % c_in
            for b in range(sw):
                component = p[n, c * sh * sw + a * sw + b]
                j0 = min(cols, max(0, -((b - pl) // sw)))  # first column inside x
                j1 = min(cols, max(j0, (wx - 1 - b + pl) // sw + 1))  # past the last
                for i in range(rows):
                    row = sh * i + a - pt
                    dst = component[i]
                    if row < 0 or row >= hx:
                        for k in range(cols):
                            dst[k] = zero
                        continue
                    for k in range(j0):
                        line[k] = zero
                    for k in range(j1, cols):
                        line[k] = zero
                    # views from 0: no negative index, so the loops vectorise
                    part, src = line[j0:j1], x[n, c, row, sw * j0 + b - pl :]
                    if sw == 2:  # the common case: a constant stride
                        for k in range(j1 - j0):
                            part[k] = src[2 * k]
                    else:
                        for k in range(j1 - j0):
                            part[k] = src[sw * k]
                    f0, f1 = dst[0:nq], dst[nq : 2 * nq]
                    f2, f3 = dst[2 * nq : 3 * nq], dst[3 * nq :]
                    for k in range(nq):  # split by column phase modulo 4
                        f0[k], f1[k] = line[4 * k], line[4 * k + 1]
                        f2[k], f3[k] = line[4 * k + 2], line[4 * k + 3]

    @jit
    def transform_sub_kernels(w, sh, sw, gm, k, t, u, o0, o1):
        """``u[A*x + y, P] = (G k_P G^T)[x, y]`` (``G = gm (A, r)``) for each polyphase
        sub-kernel ``k_P[i, j] = w[o, c, sh*i + a, sw*j + b]`` (zero beyond ``w``), ``P =
        (o*C/g + c)*S + a*sw + b``, of the filters ``o0 <= o < o1``, as many filters at a
        time as the work arrays ``k (r, r, L)``, ``t (A, r, L)`` hold. Loops over ``P``
        innermost (vectorised)."""
        cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
        alpha, r = gm.shape
        zero = u.dtype.type(0)
        per_filter = cg * sh * sw
        block = max(1, k.shape[2] // per_filter)
        for f0 in range(o0, o1, block):
            f1 = min(o1, f0 + block)
            pairs = (f1 - f0) * per_filter
            for o in range(f0, f1):
                for c in range(cg):
                    for a in range(sh):
                        for b in range(sw):
                            pair = (((o - f0) * cg + c) * sh + a) * sw + b
                            for i in range(r):
                                for j in range(r):
                                    row, col = sh * i + a, sw * j + b
                                    k[i, j, pair] = w[o, c, row, col] if row < kh and col < kw else zero
            for x in range(alpha):  # t = G k
                for j in range(r):
                    weighted_sum(t[x, j, :pairs], gm[x], k[:, j])
            for x in range(alpha):  # u = t G^T
                for y in range(alpha):
                    weighted_sum(u[alpha * x + y, f0 * per_filter : f1 * per_filter], gm[y], t[x])

    @jit
    def weighted_sum(dst, coefs, rows):
        """``dst[:] = sum_i coefs[i] * rows[i, :len(dst)]`` (a loop over ``dst`` per row,
        vectorised)."""
        for pair in range(dst.shape[0]):
            dst[pair] = dst.dtype.type(0)
        for i in range(coefs.shape[0]):
            coef, src = coefs[i], rows[i]
            for pair in range(dst.shape[0]):
                dst[pair] += coef * src[pair]

    def strided_layer(x, pt, pl, sh, sw, w, gm, bias, p, u, out, units, bounds, tw, bufs):
        """The whole strided layer on numba's threads: worker ``k`` of ``line.shape[0]``
        computes a share of the polyphase components ``p`` (:func:`split_phases`, by
        row phases of the channels) and of the transformed sub-kernels ``u`` (:func:`transform_sub_kernels`,
        by filters); then worker ``k`` of ``len(bounds) - 1`` runs
        :func:`strided_forward` on units ``bounds[k] : bounds[k+1]``; each with its own
        work arrays ``bufs[.][k]``."""
        line, kk, tt, v, m, s, y, h = bufs
        preparers, workers = line.shape[0], bounds.shape[0] - 1
        items, filters = x.shape[0] * x.shape[1] * sh, w.shape[0]
        u2 = u.reshape(u.shape[0], -1)
        for k in prange(preparers):
            i0, i1 = items * k // preparers, items * (k + 1) // preparers
            split_phases(x, pt, pl, sh, sw, p, line[k], i0, i1)
            f0, f1 = filters * k // preparers, filters * (k + 1) // preparers
            transform_sub_kernels(w, sh, sw, gm, kk[k], tt[k], u2, f0, f1)
        for k in prange(workers):
            part = units[bounds[k] : bounds[k + 1]]
            strided_forward(p, u, bias, out, part, tw, v[k], m[k], s[k], y[k], h[k])

    return SimpleNamespace(
        input_transform=input_transform,
        output_transform=output_transform,
        grad_output_transform=grad_output_transform,
        strided_layer=parallel_jit(strided_layer),
        # the same on the calling thread only, for a process forked from one that has
        # run strided_layer: OpenMP's threads do not survive a fork
        strided_layer_serial=jit(strided_layer),
        # the stages of strided_layer, for bench/profile_layers.py
        split_phases=split_phases,
        transform_sub_kernels=transform_sub_kernels,
        input_tiles44=input_tiles44,
        columns_at4=columns_at4,
        write_tiles4=write_tiles4,
    )


def input_transform(x, n0, n1, t0, t1, pads, tw, v, ws) -> None:
    """``v (36, C, tiles)`` <- ``B^T d B`` of the input tiles of images ``n0:n1``, tile
    rows ``t0:t1`` of ``x (N, C, H, W)`` zero-padded by ``pads`` (work arrays from the
    :class:`~conv_lib.workspace.Workspace` ``ws``)."""
    (pt, _), (pl, _) = pads
    nt = t1 - t0
    length = (nt + 1) * tw
    kernels(x.dtype.char).input_transform(
        x, n0, n1, t0, t1, pt, pl, tw, v,
        ws.get("xq", (4, 4, length + 1)), ws.get("hb", (6, 4, length)), ws.get("edge", (2, 4, nt + 1)),
    )  # fmt: skip


def output_transform(mp, bias, out, n0, n1, t0, t1, tw, ws) -> None:
    """Output rows of tile rows ``t0:t1`` of images ``n0:n1`` of ``out (N, O, H_out, W_out)``
    <- ``A^T M A + bias`` of the product tiles ``mp (36, O, tiles)``."""
    count = (t1 - t0) * tw
    kernels(out.dtype.char).output_transform(
        mp, bias, out, n0, n1, t0, t1, tw, ws.get("s", (6, 4, count)), ws.get("tiles", (4, 4, count))
    )


def grad_output_transform(g, n0, n1, t0, t1, tw, z, grad_b, ws) -> None:
    """``z (36, O, tiles)`` <- ``A dY A^T`` of the 4x4 tiles of ``g (N, O, H_out, W_out)``
    (images ``n0:n1``, tile rows ``t0:t1``; zero beyond ``g``); adds each channel's sum
    of ``g`` over those tiles to ``grad_b (O,)``."""
    count = (t1 - t0) * tw
    kernels(g.dtype.char).grad_output_transform(
        g, n0, n1, t0, t1, tw, z, ws.get("tiles", (4, 4, count)), ws.get("s", (6, 4, count)), grad_b
    )


def strided_layer(x, pads, stride, w, gm, bias, p, u, out, units, tw, budget_workers: int, ws) -> None:
    """``out`` <- the strided layer of :mod:`conv_lib.winograd_strided`, in one call on
    numba's threads: ``p`` <- the polyphase components of ``x (N, C, H, W)`` zero-padded
    by ``pads`` (``p[n, c*S + a*s_w + b, i, q*nq + X]`` is column ``4*X + q`` of row
    ``i`` of component ``(a, b)``: columns split by phase modulo 4), ``u (49, g, O/g,
    C/g * S)`` <- ``G k G^T`` of the 4x4 polyphase sub-kernels ``k`` of ``w (O, C/g, kH,
    kW)`` (``G = gm (7, 4)``), then per unit ``(n, t0, t1)`` (image, tile rows) of
    ``units (k, 3)``: the input transform of its tiles, the GEMMs ``U V`` and the output
    transform plus ``bias``, in work arrays sized for the largest unit, which stay in the
    core's cache.

    The units are shared out in equal contiguous parts over at most ``budget_workers``
    of numba's threads (each with its own work arrays, from ``ws``), the preparation over
    all of them, with BLAS single-threaded; numba's thread count is put back after the
    call. In a process forked from one that ran this on numba's threads, everything runs
    on the calling thread (OpenMP's threads do not survive a fork)."""
    c, o = p.shape[1], out.shape[1]
    count = int(max(units[:, 2] - units[:, 1])) * tw
    length = max(count, _PASS_VALUES)
    serial = _forked_after_parallel
    preparers = 1 if serial else worker_count()
    workers = 1 if serial else max(1, min(budget_workers, worker_count(), len(units)))
    bounds = np.array([len(units) * k // workers for k in range(workers + 1)], dtype=np.int64)
    per_filter = u.shape[3]
    pairs = per_filter * max(1, _PAIR_VALUES // per_filter)  # whole filters at a time
    (pt, _), (pl, _) = pads
    bufs = (
        ws.get("line44", (preparers, p.shape[3])), ws.get("k44", (preparers, 4, 4, pairs)),
        ws.get("t44", (preparers, 7, 4, pairs)),
        ws.get("v44", (workers, 49 * c * count)), ws.get("m44", (workers, 49 * o * count)),
        ws.get("s44", (workers, 7, 4, length)), ws.get("y44", (workers, 4, 4, length)),
        ws.get("h44", (workers, 7, p.shape[3])),
    )  # fmt: skip
    # numba compiles a new version for read-only arrays: pass writeable ones
    x, w, bias = (a if a.flags.writeable else a.copy() for a in (x, np.ascontiguousarray(w), bias))
    args = (x, pt, pl, *stride, w, gm, bias, p, u, out, units, bounds, tw, bufs)
    compiled = kernels(p.dtype.char)
    if serial:
        with single_threaded_blas():
            compiled.strided_layer_serial(*args)
        return
    import numba

    global _parallel_used
    with _parallel_lock, single_threaded_blas():
        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(max(preparers, workers), numba.config.NUMBA_NUM_THREADS)))
        _parallel_used = True
        try:
            compiled.strided_layer(*args)
        finally:
            numba.set_num_threads(before)


# Whether this process has run strided_layer on numba's threads, and whether it is a
# child forked after its parent did: OpenMP (numba's usual threading layer) then
# terminates the child at its first parallel call, so the child computes on its own
# thread. The locks are replaced in the child: a thread of the parent may have held them.
_parallel_used = False
_forked_after_parallel = False


def _after_fork_in_child() -> None:
    global _forked_after_parallel, _parallel_lock, _compile_lock
    _forked_after_parallel = _forked_after_parallel or _parallel_used
    _parallel_lock, _compile_lock = threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
