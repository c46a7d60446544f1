"""Winograd's minimal filtering for stride-1 3x3 layers (Lavin & Gray, 2016).

``F(m x m, 3x3)`` computes an ``m x m`` tile of outputs from an ``n x n`` tile of input
(``n = m + 2``) with ``n*n`` multiplications instead of ``9*m*m``::

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* is the element-wise product)

``g`` is the 3x3 kernel, ``d`` the input tile; ``A^T (m, n)``, ``G (n, 3)`` and
``B^T (n, n)`` are small constant matrices (:func:`winograd_matrices`). For a layer the
element-wise product sums over input channels, so for each of the ``n*n`` positions
``(xi, nu)`` of the transformed tile it is one matrix product::

    M[xi, nu] (C_out, tiles) = U[xi, nu] (C_out, C_in) @ V[xi, nu] (C_in, tiles)

This module does exactly that, with NumPy's ``matmul`` (BLAS) for everything:

1. the kernel transform ``U = G g G^T`` once per call (``kron(G, G) @ g``);
2. per chunk of tiles, the input tiles gathered into ``D (n*n, C_in, tiles)`` and
   transformed by one GEMM with ``kron(B^T, B^T)`` (``n*n x n*n``);
3. ``n*n`` GEMMs ``U @ V`` (batched ``matmul``; per group for grouped layers);
4. the output transform, one GEMM with ``kron(A^T, A^T)``, and the tiles written out.

That NumPy path spends more time on the copies of steps 2 and 4 and on their
transform GEMMs than on step 3. For ``F(4x4, 3x3)``, when numba is installed, steps 2
and 4 are instead loops compiled by numba (:mod:`conv_lib.winograd_kernels`) that read
the input and write the result directly, one pass each, and only step 3 stays a GEMM;
``CONV_LIB_JIT=0`` in the environment selects the NumPy path. The two paths compute
the same sums in a different order: their results differ by rounding only.

Chunks of tiles (whole images, or bands of tile rows of one image) keep the
transformed tiles within the memory budget (:func:`conv_lib.set_memory_budget`) and
below 32 MiB per thread on the NumPy path (4 MiB on the compiled one, which stays in
the cache); each chunk pads its own band of the input and writes its own rows of the
output, in its thread's kept work arrays (:mod:`conv_lib.workspace`).

The backward pass uses the same pieces: the input gradient of a stride-1 layer is a
"full" correlation of ``grad_out`` with the flipped kernel (itself a 3x3 stride-1
correlation, so Winograd again), and the weight gradient is the adjoint of steps 1-4,
``grad_w = G^T [ sum_tiles (A dY A^T) * (B^T d B) ] G``, one GEMM per position summed
over tiles.

Rounding: the transforms multiply and add numbers of different sizes (``B^T`` of
``F(4x4, 3x3)`` has entries up to 5, ``G`` down to 1/24, ``A^T`` up to 8), so the result
carries a larger rounding error than the direct sum: see :data:`FLOAT32_RTOL` and
:func:`winograd_error`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from conv_lib import winograd_kernels
from conv_lib.layout import fill_component
from conv_lib.validation import check_choice
from conv_lib.workspace import (
    Workspace,
    row_chunks,
    run_chunks,
    single_threaded_blas,
    thread_workspace,
    worker_count,
)

__all__ = [
    "FLOAT32_RTOL",
    "TILE",
    "WINOGRAD_TILES",
    "check_winograd",
    "winograd_1d",
    "winograd_error",
    "winograd_matrices",
]

# Output tile sizes m implemented, F(m x m, 3x3).
WINOGRAD_TILES: tuple[int, ...] = (2, 4)
# The tile used by method="winograd": F(4x4, 3x3) (36 multiplications for 16 outputs,
# 4x fewer than direct), whose float32 error stays within FLOAT32_RTOL (measured in
# tests/test_winograd.py and in the efficient-convolution chapter).
TILE = 4
# Tolerance stated for float32 results of method="winograd": the largest error,
# relative to the largest |output| of the layer. F(4x4, 3x3) typically reaches 1e-6 to
# 1e-5 here (the direct sum ~1e-7), F(2x2, 3x3) stays ~1e-7; F(6x6, 3x3) would be ~1e-4.
FLOAT32_RTOL = 1e-4

# Elements of the work arrays of one chunk (all buffers together): 32 MiB in float32.
# Larger chunks were faster on the benchmark's layers (bench/bench_conv.py; 2**20 to
# 2**24 tried): a chunk costs a few dozen NumPy calls, whatever its size.
_CHUNK_ELEMENTS = 2**23
# The compiled path (conv_lib.winograd_kernels) costs almost nothing per chunk: its
# chunks are small enough that the transformed tiles and products (4 MiB in float32,
# 8 MiB in float64) stay in the core's cache between the transforms and the GEMMs
# (2**18 to 2**21 tried).
_COMPILED_CHUNK_ELEMENTS = 2**20

# Lavin & Gray's matrices. F(2, 3): points 0, 1, -1 and infinity. F(4, 3): 0, 1, -1, 2,
# -2 and infinity.
_AT = {
    2: [[1, 1, 1, 0], [0, 1, -1, -1]],
    4: [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
}
_G = {
    2: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    4: [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
}
_BT = {
    2: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    4: [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
}


def _check_tile(m: Any) -> int:
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or int(m) not in WINOGRAD_TILES:
        raise ValueError(f"m: got {m!r}; expected an output tile size in {WINOGRAD_TILES} (F(m x m, 3x3))")
    return int(m)


def winograd_matrices(m: int = TILE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The transforms of ``F(m, 3)``: ``A^T (m, n)``, ``G (n, 3)``, ``B^T (n, n)``, ``n = m + 2``.

    One dimension: ``y = A^T [(G g) * (B^T d)]`` is the valid correlation of ``d`` (length
    ``n``) with ``g`` (length 3), ``y[i] = sum_k d[i + k] g[k]``. Two dimensions nest it:
    ``Y = A^T [(G g G^T) * (B^T d B)] A``.

    Parameters
    ----------
    m : int
        Output tile size, one of :data:`WINOGRAD_TILES`.

    Returns
    -------
    AT, G, BT : ndarray (float64 copies)
    """
    m = _check_tile(m)
    return np.array(_AT[m], dtype=float), np.array(_G[m], dtype=float), np.array(_BT[m], dtype=float)


def winograd_1d(d: Any, g: Any, m: int = 2) -> np.ndarray:
    """``F(m, 3)`` on one tile: ``A^T [(G g) * (B^T d)]``, ``m + 2`` multiplications.

    Parameters
    ----------
    d : array_like, shape (m + 2,)
        Input tile.
    g : array_like, shape (3,)
        Kernel.
    m : int
        Output tile size (2 or 4).

    Returns
    -------
    y : ndarray, shape (m,)
        ``y[i] = d[i] g[0] + d[i+1] g[1] + d[i+2] g[2]`` up to rounding.
    """
    at, gm, bt = winograd_matrices(m)
    d = np.asarray(d, dtype=float)
    g = np.asarray(g, dtype=float)
    if d.shape != (m + 2,) or g.shape != (3,):
        raise ValueError(
            f"d, g: got shapes {d.shape} and {g.shape}; expected ({m + 2},) and (3,) for F({m}, 3)"
        )
    return at @ ((gm @ g) * (bt @ d))


@functools.lru_cache(maxsize=16)
def _kron(m: int, dtype_char: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``kron(A^T, A^T) (m*m, n*n)``, ``kron(G, G) (n*n, 9)``, ``kron(B^T, B^T) (n*n, n*n)``:
    the 2-D transforms of flattened tiles (row-major) as single matrices."""
    at, gm, bt = winograd_matrices(m)
    dtype = np.dtype(dtype_char)
    return (
        np.kron(at, at).astype(dtype),
        np.kron(gm, gm).astype(dtype),
        np.kron(bt, bt).astype(dtype),
    )


def check_winograd(
    kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], backward: bool = False
) -> None:
    """Raise a ``ValueError`` naming the parameter unless ``method="winograd"`` computes
    the layer: dilation 1 and either a 3x3 kernel at stride 1 (``F(4x4, 3x3)``, forward
    and backward) or, forward only, a stride above 1 with polyphase kernels of at most
    4x4 (:mod:`conv_lib.winograd_strided`: kernels up to ``4*s``, e.g. 7x7 at stride 2)."""
    kernel, stride, dilation = tuple(kernel), tuple(stride), tuple(dilation)
    use_other = "use method='im2col' or 'auto' for others"
    if dilation != (1, 1):
        raise ValueError(
            f"dilation: got {dilation} with method='winograd'; expected (1, 1) "
            f"(Winograd's tiles are of adjacent inputs; {use_other})"
        )
    if stride == (1, 1):
        if kernel != (3, 3):
            raise ValueError(
                f"weight: got kernel size {kernel} with method='winograd' at stride 1; expected (3, 3) "
                f"(Winograd F(4x4, 3x3) computes stride-1 layers with 3x3 kernels; {use_other})"
            )
        return
    if backward:
        raise ValueError(
            f"stride: got {stride} with method='winograd' in conv2d_backward; expected (1, 1) "
            "(the backward pass by Winograd is for stride-1 3x3 layers; use method='im2col' or 'auto')"
        )
    from conv_lib import winograd_strided  # it builds on this module's matrices

    if not winograd_strided.supports(kernel, stride, dilation):
        most = winograd_strided.MAX_POLYPHASE_KERNEL
        largest = (most * stride[0], most * stride[1])
        raise ValueError(
            f"weight: got kernel size {kernel} with method='winograd' at stride {stride}; expected at "
            f"most {largest} (a strided layer is computed as a stride-1 layer with kernels of "
            f"ceil(k/s) <= 4 over its polyphase components, by F(4x4, 4x4); {use_other})"
        )


# ----------------------------------------------------------------------------------
# tiles, on a flat layout
# ----------------------------------------------------------------------------------
# The padded input is split by rows into its m row phases (row m*Y + r goes to phase r,
# row Y) and each phase is stored with rows of Wf = m*(tw + 1) values (tw tiles per row
# plus one "garbage" tile). Element (a, b) of tile (ty, tx) is then in phase a % m at
# flat index (ty + a // m)*Wf + m*tx + b = m*k + ((a // m)*Wf + b), k = ty*(tw + 1) + tx:
# for every tile of a chunk it is ONE slice with step m, so gathering the tiles costs
# n*n strided copies per chunk instead of one per tile row. The garbage tile of each
# row (tx = tw) is computed and dropped: 1/tw more work. The output tiles are written
# back through the same layout (phase i holds output rows m*ty + i), then copied row by
# row into the result. Every chunk (images, band of tile rows) pads its own part of
# the input into its thread's work arrays, so nothing of the size of the layer is
# allocated but the result.
class _TilePlan:
    """Tiles of the output of ``x (H, W)`` zero-padded by ``pads`` (stride 1, 3x3)."""

    def __init__(self, h: int, w: int, pads, m: int, garbage: bool = True):
        (pt, pb), (pl, pr) = pads
        self.m, self.n = m, m + 2
        self.ho, self.wo = h + pt + pb - 2, w + pl + pr - 2
        self.th, self.tw = -(-self.ho // m), -(-self.wo // m)
        # tiles per row of the flat layout: one garbage tile on the NumPy path, none on
        # the compiled one (conv_lib.winograd_kernels)
        self.stride = self.tw + 1 if garbage else self.tw
        self.wf = m * self.stride  # flat row length
        self.pads = pads

    def positions(self, t0: int, t1: int) -> int:
        """Tiles (garbage included) of tile rows ``t0:t1`` of one image."""
        return (t1 - t0) * self.stride

    def out_rows(self, t0: int, t1: int, i: int) -> int:
        """Output rows ``m*t + i``, ``t0 <= t < t1``, that exist (``< H_out``)."""
        return max(0, min(t1, -(-(self.ho - i) // self.m)) - t0)


def _fill_padded(buf: np.ndarray, x: np.ndarray, n0: int, t0: int, plan: _TilePlan) -> None:
    """``buf (nb, C, m, rows, Wf)`` <- images ``n0:n0+nb`` of ``x`` zero-padded and split
    into row phases, phase rows ``t0:t0+rows`` (row ``q`` of phase ``r`` is padded row
    ``m*(t0 + q) + r``): the polyphase components ``(r, 0)`` for stride ``(m, 1)``."""
    for r in range(plan.m):
        fill_component(buf[:, :, r], x, n0, plan.pads, (plan.m, 1), (r, 0), t0)


def _tile_view(flat: np.ndarray, plan: _TilePlan, row0: int, cols: int, length: int) -> np.ndarray:
    """Strided view ``(m, cols, C, nb, length)`` of a phase-split ``flat (nb, C, m, R)``:
    element ``(r, j, c, n, k)`` is ``flat[n, c, r, row0*wf + j + m*k]``, i.e. element
    ``(m*row0 + r, j)`` of tile ``k`` of image ``n``: one numpy call moves that element
    of every tile."""
    s_n, s_c, s_p, s_1 = flat.strides
    last = row0 * plan.wf + cols - 1 + plan.m * (length - 1)
    if last >= flat.shape[3]:  # as_strided does not check: never read past the buffer
        raise AssertionError(f"tile view reaches index {last} of a phase of {flat.shape[3]}")
    base = flat[..., row0 * plan.wf :]
    shape = (plan.m, cols, flat.shape[1], flat.shape[0], length)
    return np.lib.stride_tricks.as_strided(base, shape, (s_p, s_1, s_c, s_n, plan.m * s_1), writeable=True)


def _input_tiles(ws: Workspace, x: np.ndarray, n0: int, n1: int, t0: int, t1: int, plan: _TilePlan):
    """``D (n*n, C, nb, L)``: the ``n x n`` input tiles of tile rows ``t0:t1`` of images
    ``n0:n1`` (``L`` tiles per image, garbage tiles included), in the thread's work arrays."""
    m, nn = plan.m, plan.n
    nb, c = n1 - n0, x.shape[1]
    rows = t1 - t0 + 2  # the tiles read phase rows t0..t1; the last garbage tile one more value
    xc = ws.get("x", (nb, c, m, rows, plan.wf))
    _fill_padded(xc, x, n0, t0, plan)
    flat = xc.reshape(nb, c, m, rows * plan.wf)
    length = plan.positions(t0, t1)
    d = ws.get("d", (nn * nn, c, nb, length))
    dv = d.reshape(nn, nn, c, nb, length)
    # row a of a tile is row a // m of phase a % m: one strided copy per a // m
    for q in range(-(-nn // m)):
        count = min(m, nn - q * m)
        dv[q * m : q * m + count] = _tile_view(flat, plan, q, nn, length)[:count]
    return d


def _write_output(out: np.ndarray, ws: Workspace, y: np.ndarray, n0: int, n1: int, t0: int, t1: int, plan):
    """``out (N, O, H_out, W_out)`` <- the output tiles ``y (m*m, O, nb, L)`` of tile rows
    ``t0:t1``: through the phase layout (one strided copy per tile element, whose inner
    loop runs over all L tiles), then row by row into ``out``."""
    m = plan.m
    nb, o, thc = n1 - n0, out.shape[1], t1 - t0
    phases = ws.get("out", (nb, o, m, thc * plan.wf))
    view = _tile_view(phases, plan, 0, m, plan.positions(t0, t1))
    for i in range(m):
        for j in range(m):
            view[i, j] = y[i * m + j]
    rows = phases.reshape(nb, o, m, thc, plan.wf)
    for i in range(m):
        count = plan.out_rows(t0, t1, i)
        if count:
            first = m * t0 + i
            out[n0:n1, :, first : first + m * (count - 1) + 1 : m] = rows[:, :, i, :count, : plan.wo]


def _output_tiles(ws: Workspace, g: np.ndarray, n0: int, n1: int, t0: int, t1: int, plan) -> np.ndarray:
    """``dY (m*m, O, nb, L)``: ``grad_out`` cut into the ``m x m`` output tiles of tile
    rows ``t0:t1`` (zero in the garbage tiles and beyond the output): the adjoint of
    :func:`_write_output`."""
    m = plan.m
    nb, o, thc = n1 - n0, g.shape[1], t1 - t0
    phases = ws.get("out", (nb, o, m, thc, plan.wf))
    phases[..., plan.wo :] = 0
    for i in range(m):
        count = plan.out_rows(t0, t1, i)
        phases[:, :, i, count:] = 0
        if count:
            first = m * t0 + i
            phases[:, :, i, :count, : plan.wo] = g[n0:n1, :, first : first + m * (count - 1) + 1 : m]
    length = plan.positions(t0, t1)
    dy = ws.get("y", (m * m, o, nb, length))
    flat = phases.reshape(nb, o, m, thc * plan.wf)
    dy.reshape(m, m, o, nb, length)[...] = _tile_view(flat, plan, 0, m, length)
    return dy


# ----------------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------------
def weight_transform(w: np.ndarray, groups: int, m: int = TILE) -> np.ndarray:
    """``U = G g G^T`` for every filter: ``w (O, C/g, 3, 3)`` -> ``(n*n, g, O/g, C/g)``."""
    return transform_kernels(w, _kron(m, w.dtype.char)[1], groups)


def transform_kernels(w: np.ndarray, gg: np.ndarray, groups: int) -> np.ndarray:
    """``U = G g G^T`` for every filter of ``w (O, C/g, r, r)``, as one product with
    ``gg = kron(G, G) (n*n, r*r)``: returns ``(n*n, g, O/g, C/g)``."""
    o, cg = w.shape[:2]
    # a small product: on the calling thread, so that no BLAS worker thread is woken up
    # (it would keep spinning on a core while conv_lib's threads do the chunks)
    with single_threaded_blas():
        u = gg @ w.reshape(o * cg, -1).T  # (n*n, O*cg)
    return np.ascontiguousarray(u.reshape(-1, groups, o // groups, cg))


def tile_row_chunks(n: int, rows: int, elements_per_row: int, itemsize: int, budget: int, largest: int):
    """``[(n0, n1, t0, t1), ...]``: images ``n0:n1`` and tile rows ``t0:t1`` whose buffers
    hold at most ``min(budget / threads, largest)`` worth of elements per thread (each
    thread holds one chunk at a time; at least one tile row).

    Chunks are as large as that allows (on the NumPy path every chunk costs a few dozen
    NumPy calls; the compiled path's ``largest`` keeps its chunks near the cache) and of
    equal size, their number a multiple of the threads where the images allow it, so
    that the threads finish together (:func:`conv_lib.workspace.row_chunks`)."""
    workers = worker_count()
    limit = max(1, min(max(1, budget // workers) // itemsize, largest))
    return row_chunks(n, rows, elements_per_row, limit, workers, fewest=workers)


def _plan_chunks(n: int, c: int, o: int, plan: _TilePlan, itemsize: int, budget: int, compiled: bool = False):
    """Chunks of tiles; every thread's buffers for one chunk stay within the budget."""
    if compiled:  # V and the products (the compiled transforms' own buffers are per row)
        per_tile, largest = plan.n**2 * (c + o), _COMPILED_CHUNK_ELEMENTS
    else:  # D, V, the products, the output tiles, the padded input and output rows
        per_tile, largest = plan.n**2 * (2 * c + o) + plan.m**2 * (o + c + o), _CHUNK_ELEMENTS
    return tile_row_chunks(n, plan.th, per_tile * plan.stride, itemsize, budget, largest)


def _compiled(m: int) -> bool:
    """Whether ``F(m x m, 3x3)`` runs on the compiled transforms (:mod:`conv_lib.winograd_kernels`)."""
    return m == 4 and winograd_kernels.available()


def _ones_position(m: int) -> int:
    """Position of the transformed tile that the output transform spreads evenly over
    the whole output tile (the interpolation point 1: ``A^T[:, 1]`` is all ones), so
    adding ``b`` there adds ``b`` to every output; its adjoint sums a tile."""
    return (m + 2) + 1


def corr_winograd(
    x: np.ndarray, pads, w: np.ndarray, groups: int, budget: int, m: int = TILE, bias: Any = None
) -> np.ndarray:
    """Cross-correlation of ``x (N, C, H, W)`` zero-padded by ``pads`` with the 3x3 kernels
    ``w (O, C/g, 3, 3)`` at stride 1, by ``F(m x m, 3x3)``, plus ``bias (O,)`` if given;
    returns ``(N, O, H_out, W_out)``.

    ``x``, ``w`` and ``bias`` share a floating dtype (validated by the caller). Chunks of
    tiles run on conv_lib's threads (:func:`conv_lib.workspace.run_chunks`), each in its
    thread's work arrays (:func:`conv_lib.workspace.thread_workspace`)."""
    if _compiled(m):
        return _corr_compiled(x, pads, w, groups, budget, bias)
    n, c, h, wd = x.shape
    o, cg = w.shape[:2]
    og = o // groups
    plan = _TilePlan(h, wd, pads, m)
    nn2, mm = plan.n**2, m * m
    aa, _, bb = _kron(m, x.dtype.char)
    u = weight_transform(w, groups, m)
    ones = _ones_position(m)
    out = np.empty((n, o, plan.ho, plan.wo), dtype=x.dtype)
    chunks = _plan_chunks(n, c, o, plan, x.itemsize, budget)

    def work(k0: int, k1: int) -> None:
        ws = thread_workspace(x.dtype)
        for n0, n1, t0, t1 in chunks[k0:k1]:
            d = _input_tiles(ws, x, n0, n1, t0, t1, plan)
            p = d.shape[2] * d.shape[3]
            v = np.matmul(bb, d.reshape(nn2, c * p), out=ws.get("v", (nn2, c * p)))
            prod = ws.get("prod", (nn2, groups, og, p))
            np.matmul(u, v.reshape(nn2, groups, cg, p), out=prod)
            if bias is not None:
                prod[ones].reshape(o, p)[...] += bias[:, None]
            y = np.matmul(aa, prod.reshape(nn2, o * p), out=ws.get("y", (mm, o * p)))
            _write_output(out, ws, y.reshape(mm, o, n1 - n0, p // (n1 - n0)), n0, n1, t0, t1, plan)

    run_chunks(work, len(chunks))
    return out


def _corr_compiled(x: np.ndarray, pads, w: np.ndarray, groups: int, budget: int, bias: Any) -> np.ndarray:
    """:func:`corr_winograd` for ``F(4x4, 3x3)`` with the compiled transforms: per chunk,
    ``V = B^T d B`` straight from ``x``, the 36 GEMMs ``U @ V``, and ``A^T M A + bias``
    straight into the result."""
    x = np.ascontiguousarray(x)
    n, c, h, wd = x.shape
    o, cg = w.shape[:2]
    og = o // groups
    plan = _TilePlan(h, wd, pads, 4, garbage=False)
    u = weight_transform(w, groups, 4)
    b = np.zeros(o, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    out = np.empty((n, o, plan.ho, plan.wo), dtype=x.dtype)
    chunks = _plan_chunks(n, c, o, plan, x.itemsize, budget, compiled=True)

    def work(k0: int, k1: int) -> None:
        ws = thread_workspace(x.dtype)
        for n0, n1, t0, t1 in chunks[k0:k1]:
            p = (n1 - n0) * (t1 - t0) * plan.tw
            v = ws.get("v", (36, c, p))
            winograd_kernels.input_transform(x, n0, n1, t0, t1, pads, plan.tw, v, ws)
            prod = np.matmul(u, v.reshape(36, groups, cg, p), out=ws.get("prod", (36, groups, og, p)))
            winograd_kernels.output_transform(prod.reshape(36, o, p), b, out, n0, n1, t0, t1, plan.tw, ws)

    run_chunks(work, len(chunks))
    return out


# ----------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------
def grad_input_winograd(g: np.ndarray, w: np.ndarray, pads, groups: int, budget: int, m: int = TILE):
    """Gradient w.r.t. the unpadded input ``(N, C, H, W)`` of a stride-1 3x3 layer: the
    "full" correlation of ``grad_out`` with the flipped, channel-transposed kernel,
    itself a stride-1 3x3 correlation computed by :func:`corr_winograd`."""
    o, cg = w.shape[:2]
    og = o // groups
    (pt, pb), (pl, pr) = pads
    wt = w.reshape(groups, og, cg, 3, 3).transpose(0, 2, 1, 3, 4).reshape(groups * cg, og, 3, 3)
    wt = np.ascontiguousarray(wt[..., ::-1, ::-1])
    # grad_x[r] = sum_i g[r + pt - i] w[i] = sum_k g[r + pt - 2 + k] w[2 - k]: grad_out
    # padded by 2 - pt above and 2 - pb below (a negative pad cuts rows off)
    (a, b), (c, d) = (2 - pt, 2 - pb), (2 - pl, 2 - pr)
    src = g[:, :, max(0, -a) : g.shape[2] - max(0, -b), max(0, -c) : g.shape[3] - max(0, -d)]
    gpads = ((max(0, a), max(0, b)), (max(0, c), max(0, d)))
    return corr_winograd(src, gpads, wt, groups, budget, m)


def grad_weight_winograd(
    g: np.ndarray, x: np.ndarray, pads, w_shape, groups: int, budget: int, m: int = TILE
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients w.r.t. the 3x3 weight, ``(O, C/g, 3, 3)``, and the bias, ``(O,)``: the
    adjoint of the forward steps, ``G^T [ sum over tiles of (A dY A^T) * (B^T d B) ] G``;
    the bias gradient is the adjoint of adding the bias at :func:`_ones_position`."""
    n, c, h, wd = x.shape
    o, cg = w_shape[:2]
    og = o // groups
    compiled = _compiled(m)
    plan = _TilePlan(h, wd, pads, m, garbage=not compiled)
    nn2, mm = plan.n**2, m * m
    aa, gg, bb = _kron(m, x.dtype.char)
    ones = _ones_position(m)
    chunks = _plan_chunks(n, c, o, plan, x.itemsize, budget, compiled)
    if compiled:
        x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)

    def work_compiled(k0: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
        ws = thread_workspace(x.dtype)
        # the sum over this thread's chunks and one chunk's products: each 36*O*C/g
        # values (4x the weight), allocated per call, not kept (they can be large)
        du = np.zeros((nn2, groups, og, cg), dtype=x.dtype)
        part = np.empty_like(du)
        db = np.zeros(o, dtype=x.dtype)
        for n0, n1, t0, t1 in chunks[k0:k1]:
            p = (n1 - n0) * (t1 - t0) * plan.tw
            v = ws.get("v", (nn2, c, p))
            winograd_kernels.input_transform(x, n0, n1, t0, t1, pads, plan.tw, v, ws)
            z = ws.get("prod", (nn2, o, p))
            winograd_kernels.grad_output_transform(g, n0, n1, t0, t1, plan.tw, z, db, ws)
            vt = v.reshape(nn2, groups, cg, p).transpose(0, 1, 3, 2)
            du += np.matmul(z.reshape(nn2, groups, og, p), vt, out=part)
        return du, db

    def work(k0: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
        ws = thread_workspace(x.dtype)
        du = np.zeros((nn2, groups, og, cg), dtype=x.dtype)
        db = np.zeros(o, dtype=x.dtype)
        for n0, n1, t0, t1 in chunks[k0:k1]:
            d = _input_tiles(ws, x, n0, n1, t0, t1, plan)
            p = d.shape[2] * d.shape[3]
            v = np.matmul(bb, d.reshape(nn2, c * p), out=ws.get("v", (nn2, c * p)))
            dy = _output_tiles(ws, g, n0, n1, t0, t1, plan)
            z = np.matmul(aa.T, dy.reshape(mm, o * p), out=ws.get("prod", (nn2, o * p)))
            db += z[ones].reshape(o, p).sum(axis=1)
            vt = v.reshape(nn2, groups, cg, p).transpose(0, 1, 3, 2)
            du += np.matmul(z.reshape(nn2, groups, og, p), vt)
        return du, db

    parts = run_chunks(work_compiled if compiled else work, len(chunks))
    du = sum(part[0] for part in parts)
    with single_threaded_blas():  # a small product: wake no BLAS thread (see weight_transform)
        gw = gg.T @ du.reshape(nn2, o * cg)  # (9, O*cg)
    return np.ascontiguousarray(gw.T).reshape(w_shape), sum(part[1] for part in parts)


def winograd_error(m: int, c_in: int = 64, dtype: Any = np.float32, seed: int = 0, size: int = 16) -> float:
    """Largest error of ``F(m x m, 3x3)`` in ``dtype`` on a random layer, relative to the
    largest |output|, against the exact (float64 direct) result. For the chapter and tests."""
    m = _check_tile(m)
    check_choice("dtype", np.dtype(dtype).name, ("float32", "float64"))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, c_in, size, size))
    w = rng.standard_normal((8, c_in, 3, 3))
    exact = np.zeros((1, 8, size, size))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(3):
        for j in range(3):
            exact += np.einsum("oc,nchw->nohw", w[:, :, i, j], xp[:, :, i : i + size, j : j + size])
    got = corr_winograd(x.astype(dtype), ((1, 1), (1, 1)), w.astype(dtype), 1, 2**30, m)
    return float(np.abs(got - exact).max() / np.abs(exact).max())
