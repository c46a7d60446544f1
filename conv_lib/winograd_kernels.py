"""Compiled transforms of ``F(4x4, 3x3)`` for :mod:`conv_lib.winograd`, and of
``F(3x3, 4x4)`` for :mod:`conv_lib.winograd_strided` (numba).

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

For strided layers, :func:`input_transform_f34` and :func:`output_transform_f34` do
the same for ``F(3x3, 4x4)`` (same ``B^T``; tiles step by 3) on the zero-padded
polyphase components that :mod:`conv_lib.winograd_strided` prepares.

The GEMMs between them stay NumPy ``matmul`` (BLAS). The transforms are the 1-D
``F(4, 3)`` transforms applied along rows then columns, with ``B^T``, ``A^T`` written
out as additions and multiplications by 2, 4, 5 and 8 (their entries).

The kernels are compiled on first use, once per dtype and process (about 3 s for the
forward's, 1.5 s more for the weight gradient's, on the course's machine). numba is
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
    "input_transform_f34",
    "kernels",
    "numpy_transforms",
    "output_transform",
    "strided_forward",
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

    # F(3x3, 4x4), for strided layers (conv_lib.winograd_strided): the same B^T; tiles
    # step by 3 over the zero-padded polyphase components p (N, C', rows, cols).
    @inline
    def at3(m0, m1, m2, m3, m4, m5):
        """``A^T m`` of ``F(3, 4)``: 6 products to 3 outputs."""
        e, g = m1 + m2, m3 + m4
        return m0 + e + g, (m1 - m2) + c2 * (m3 - m4), e + c4 * g + m5

    @jit
    def input_transform_f34(p, n0, n1, t0, t1, tw, v, r):
        """``v[6*k + l, c, tile] = (B^T d B)[k, l]`` of the 6x6 tiles ``d`` of ``p``;
        ``r (6, 3, tw + 1)``: one tile row after the pass down its 6 input rows, split
        by column modulo 3, so that the pass along the row is contiguous."""
        nt = t1 - t0
        for n in range(n0, n1):
            for c in range(p.shape[1]):
                for ty in range(t0, t1):
                    k0 = ((n - n0) * nt + ty - t0) * tw
                    d0, d1, d2 = p[n, c, 3 * ty], p[n, c, 3 * ty + 1], p[n, c, 3 * ty + 2]
                    d3, d4, d5 = p[n, c, 3 * ty + 3], p[n, c, 3 * ty + 4], p[n, c, 3 * ty + 5]
                    for q in range(3):
                        r0, r1, r2, r3, r4, r5 = r[0, q], r[1, q], r[2, q], r[3, q], r[4, q], r[5, q]
                        for col in range(tw + 1):
                            i = 3 * col + q
                            r0[col], r1[col], r2[col], r3[col], r4[col], r5[col] = bt(
                                d0[i], d1[i], d2[i], d3[i], d4[i], d5[i]
                            )
                    row = slice(k0, k0 + tw)
                    for k in range(6):
                        e0, e1, e2 = r[k, 0], r[k, 1], r[k, 2]
                        v0, v1, v2 = v[6 * k, c, row], v[6 * k + 1, c, row], v[6 * k + 2, c, row]
                        v3, v4, v5 = v[6 * k + 3, c, row], v[6 * k + 4, c, row], v[6 * k + 5, c, row]
                        for tx in range(tw):
                            v0[tx], v1[tx], v2[tx], v3[tx], v4[tx], v5[tx] = bt(
                                e0[tx], e1[tx], e2[tx], e0[tx + 1], e1[tx + 1], e2[tx + 1]
                            )

    @jit
    def columns_at3(m, k0, k1, s, y):
        """``y[i, j, k - k0] = (A^T M A)[i, j]`` of the product tiles ``m[:, k0:k1]``
        (``m (36, K)``: ``k`` over output channels and tiles, flat); ``s (6, 3, >= k1 -
        k0)`` holds the pass along the rows. Each loop is over one contiguous index
        (vectorised)."""
        length = k1 - k0
        for xi in range(6):
            q = 6 * xi
            r0, r1, r2 = m[q, k0:k1], m[q + 1, k0:k1], m[q + 2, k0:k1]
            r3, r4, r5 = m[q + 3, k0:k1], m[q + 4, k0:k1], m[q + 5, k0:k1]
            s0, s1, s2 = s[xi, 0], s[xi, 1], s[xi, 2]
            for k in range(length):
                s0[k], s1[k], s2[k] = at3(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k])
        for j in range(3):
            r0, r1, r2 = s[0, j], s[1, j], s[2, j]
            r3, r4, r5 = s[3, j], s[4, j], s[5, j]
            y0, y1, y2 = y[0, j], y[1, j], y[2, j]
            for k in range(length):
                y0[k], y1[k], y2[k] = at3(r0[k], r1[k], r2[k], r3[k], r4[k], r5[k])

    @jit
    def write_tiles3(y, bias, out, n, o0, o1, t0, t1, tw):
        """Output rows of tile rows ``t0:t1`` of channels ``o0:o1`` of ``out[n]`` <- ``y +
        bias``: tile ``(ty, tx)`` of channel ``o`` is column ``((o - o0)*nt + ty - t0)*tw
        + tx`` of ``y (3, 3, K)``; its 3x3 outputs are stored interleaved (column ``3*tx +
        j``)."""
        ho, wo = out.shape[2], out.shape[3]
        count = (t1 - t0) * tw
        full = min(wo // 3, tw)  # tiles whose 3 columns all exist
        for o in range(o0, o1):
            b = bias[o]
            for ty in range(t0, t1):
                k0 = (o - o0) * count + (ty - t0) * tw
                for i in range(min(3, ho - 3 * ty)):
                    d = out[n, o, 3 * ty + i]
                    a0, a1, a2 = y[i, 0, k0 : k0 + tw], y[i, 1, k0 : k0 + tw], y[i, 2, k0 : k0 + tw]
                    for k in range(full):
                        d[3 * k] = a0[k] + b
                        d[3 * k + 1] = a1[k] + b
                        d[3 * k + 2] = a2[k] + b
                    for col in range(3 * full, wo):  # the tile cut by the right edge
                        d[col] = y[i, col - 3 * full, k0 + full] + b

    @jit
    def strided_forward(p, u, bias, out, units, tw, v, m, s, y, r):
        """For each unit ``(n, t0, t1)`` of ``units``: ``V = B^T d B`` of the tiles of
        tile rows ``t0:t1`` of image ``n`` of ``p``, the 36 (times groups) GEMMs ``U V``
        (BLAS, through ``np.dot``), then ``A^T M A + bias`` into ``out``, a few output
        channels at a time so that the transform's passes stay in the L1 cache. ``v``,
        ``m``: flat work arrays for the largest unit; ``s (6, 3, L)``, ``y (3, 3, L)``:
        for ``L`` values of the products; ``r``: see :func:`input_transform_f34`."""
        c, o = p.shape[1], out.shape[1]
        groups, og, cg = u.shape[1], u.shape[2], u.shape[3]
        for unit in range(units.shape[0]):
            n, t0, t1 = units[unit, 0], units[unit, 1], units[unit, 2]
            count = (t1 - t0) * tw
            vc = v[: 36 * c * count].reshape(36, c, count)
            input_transform_f34(p, n, n + 1, t0, t1, tw, vc, r)
            vg = vc.reshape(36, groups, cg, count)
            mg = m[: 36 * o * count].reshape(36, groups, og, count)
            for q in range(36):
                for g in range(groups):
                    np.dot(u[q, g], vg[q, g], mg[q, g])
            mk = mg.reshape(36, o * count)
            step = max(1, s.shape[2] // count)  # output channels per pass
            for o0 in range(0, o, step):
                o1 = min(o, o0 + step)
                columns_at3(mk, o0 * count, o1 * count, s, y)
                write_tiles3(y, bias, out, n, o0, o1, t0, t1, tw)

    @parallel_jit
    def strided_forward_parallel(p, u, bias, out, units, bounds, tw, v, m, s, y, r):
        """:func:`strided_forward` of units ``bounds[k] : bounds[k+1]`` on worker ``k``
        (numba's threads), with that worker's work arrays ``v[k]``, ``m[k]``..."""
        for k in prange(bounds.shape[0] - 1):
            part = units[bounds[k] : bounds[k + 1]]
            strided_forward(p, u, bias, out, part, tw, v[k], m[k], s[k], y[k], r[k])

    @jit
    def split_phases(x, pt, pl, sh, sw, p):
        """``p[n, c*S + a*sw + b, i, j] = x[n, c, sh*i + a - pt, sw*j + b - pl]`` (zero
        outside ``x``): the polyphase components of ``x`` zero-padded by ``pt`` rows above
        and ``pl`` columns on the left, ``S = sh*sw`` of them per channel."""
        n_img, c_in, h, w = x.shape
        rows, cols = p.shape[2], p.shape[3]
        zero = p.dtype.type(0)
        for nc in range(n_img * c_in):
            n, c = nc // c_in, nc % c_in
            for a in range(sh):
                for b in range(sw):
                    component = p[n, c * sh * sw + a * sw + b]
                    j0 = min(cols, max(0, -((b - pl) // sw)))  # first j inside x
                    j1 = min(cols, max(j0, (w - 1 - b + pl) // sw + 1))  # past the last
                    for i in range(rows):
                        row = sh * i + a - pt
                        line = component[i]
                        if row < 0 or row >= h:
                            for j in range(cols):
                                line[j] = zero
                            continue
                        for j in range(j0):
                            line[j] = zero
                        for j in range(j1, cols):
                            line[j] = zero
                        # views that start at 0, so that the indices are not negative
                        # (the loops then vectorise)
                        dst, src = line[j0:j1], x[n, c, row, sw * j0 + b - pl :]
                        if sw == 2:  # the common case: a constant stride
                            for k in range(j1 - j0):
                                dst[k] = src[2 * k]
                        else:
                            for k in range(j1 - j0):
                                dst[k] = src[sw * k]

    @jit
    def transform_sub_kernels(w, sh, sw, gm, u):
        """``u[6*x + y, g, o, c*S + a*sw + b] = (G k G^T)[x, y]`` for each polyphase
        sub-kernel ``k[i, j] = w[g*O_g + o, c, sh*i + a, sw*j + b]`` (zero beyond ``w``;
        ``G = gm (6, 4)``), in the layout of :func:`strided_forward`'s GEMMs."""
        o_all, cg, kh, kw = w.shape
        groups, og = u.shape[1], u.shape[2]
        zero = u.dtype.type(0)
        k = np.empty((4, 4), u.dtype)
        t = np.empty((6, 4), u.dtype)
        for o in range(o_all):
            g, oi = o // og, o % og
            for c in range(cg):
                for a in range(sh):
                    for b in range(sw):
                        for i in range(4):
                            for j in range(4):
                                r, col = sh * i + a, sw * j + b
                                k[i, j] = w[o, c, r, col] if r < kh and col < kw else zero
                        for x in range(6):  # t = G k
                            for j in range(4):
                                t[x, j] = gm[x, 0] * k[0, j] + gm[x, 1] * k[1, j] + gm[x, 2] * k[2, j] + gm[x, 3] * k[3, j]
                        ci = c * sh * sw + a * sw + b
                        for x in range(6):  # u = t G^T
                            for y in range(6):
                                u[6 * x + y, g, oi, ci] = (
                                    t[x, 0] * gm[y, 0] + t[x, 1] * gm[y, 1] + t[x, 2] * gm[y, 2] + t[x, 3] * gm[y, 3]
                                )

    return SimpleNamespace(
        input_transform=input_transform,
        output_transform=output_transform,
        grad_output_transform=grad_output_transform,
        input_transform_f34=input_transform_f34,
        strided_forward=strided_forward_parallel,
        split_phases=split_phases,
        columns_at3=columns_at3,
        write_tiles3=write_tiles3,
        transform_sub_kernels=transform_sub_kernels,
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


def input_transform_f34(p, n0, n1, t0, t1, tw, v, ws) -> None:
    """``v (36, C', tiles)`` <- ``B^T d B`` of the 6x6 tiles (step 3) of tile rows
    ``t0:t1`` of images ``n0:n1`` of the padded polyphase components ``p (N, C', 3*th + 3,
    3*tw + 3)`` (:mod:`conv_lib.winograd_strided`)."""
    kernels(p.dtype.char).input_transform_f34(p, n0, n1, t0, t1, tw, v, ws.get("r34", (6, 3, tw + 1)))


def split_phases(x, pads, stride, p) -> None:
    """``p (N, C*S, rows, cols)`` <- the ``S = s_h*s_w`` polyphase components of each
    channel of ``x (N, C, H, W)`` zero-padded by ``pads`` (channel ``c*S + a*s_w + b`` is
    component ``(a, b)``), with zeros beyond ``x`` up to the size of ``p``."""
    (pt, _), (pl, _) = pads
    kernels(x.dtype.char).split_phases(x, pt, pl, stride[0], stride[1], p)


def strided_forward(p, u, bias, out, units, tw, budget_workers: int, ws) -> None:
    """``out`` <- the strided layer of :mod:`conv_lib.winograd_strided` on the units
    ``(n, t0, t1)`` (image, tile rows) of ``units (k, 3)``: per unit, the input transform
    of ``p (N, C', 3*th + 3, 3*tw + 3)``, the GEMMs with ``u (36, g, O/g, C'/g)`` and the
    output transform plus ``bias``, in work arrays sized for the largest unit, which
    stay in the core's cache.

    The units are shared out in equal contiguous parts over at most ``budget_workers``
    of numba's threads (each with its own work arrays, from ``ws``), with BLAS on the
    calling thread only."""
    c, o = p.shape[1], out.shape[1]
    count = int(max(units[:, 2] - units[:, 1])) * tw
    length = max(count, _PASS_VALUES)
    workers = max(1, min(budget_workers, worker_count(), len(units)))
    bounds = np.array([len(units) * k // workers for k in range(workers + 1)], dtype=np.int64)
    compiled = kernels(p.dtype.char)
    with _parallel_lock, single_threaded_blas():
        _set_threads(workers)
        compiled.strided_forward(
            p, u, bias, out, units, bounds, tw,
            ws.get("v34", (workers, 36 * c * count)), ws.get("m34", (workers, 36 * o * count)),
            ws.get("s34", (workers, 6, 3, length)), ws.get("y34", (workers, 3, 3, length)),
            ws.get("r34", (workers, 6, 3, tw + 1)),
        )  # fmt: skip


def _set_threads(count: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))


def transform_sub_kernels(w, stride, gm, groups: int) -> np.ndarray:
    """``U (36, g, O/g, C/g * S)``: ``G k G^T`` of every polyphase sub-kernel ``k`` (4x4,
    zero-padded) of ``w (O, C/g, kH, kW)`` at ``stride`` (``S = s_h*s_w`` of them per
    channel; :mod:`conv_lib.winograd_strided`), ``G = gm (6, 4)`` in ``w``'s dtype."""
    o, cg = w.shape[:2]
    u = np.empty((36, groups, o // groups, cg * stride[0] * stride[1]), dtype=w.dtype)
    kernels(w.dtype.char).transform_sub_kernels(np.ascontiguousarray(w), stride[0], stride[1], gm, u)
    return u
