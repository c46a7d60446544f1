"""im2col + GEMM: every receptive field copied into a column, all outputs by matrix products.

:func:`im2col` / :func:`col2im` are the textbook versions (the whole column matrix at
once, like ``torch.nn.functional.unfold`` / ``fold``). The layers use the flat layout
(:class:`FlatPlan`): on the flattened padded image the input of one kernel tap is ONE
contiguous slice for a whole band of output rows, so the column matrix of a chunk is
``kH*kW`` block copies and one GEMM computes the chunk's outputs
(:func:`corr_flat`, :func:`grad_weight_flat`, :func:`grad_input_flat`).
"""

from __future__ import annotations

import numpy as np

from conv_lib.layout import Pads, component_window, fill_component, out_len, pad_hw, tap_slice
from conv_lib.validation import as_array, as_pair, check_positive_int
from conv_lib.workspace import (
    _CACHE_CHUNK,
    _FLAT_CHUNK_ELEMENTS,
    get_memory_budget,
    row_chunks,
    run_chunks,
    thread_workspace,
    worker_count,
)

__all__ = ["col2im", "corr_flat", "grad_input_flat", "grad_input_flat_strided", "grad_weight_flat", "im2col"]


# ----------------------------------------------------------------------------------
# im2col / col2im
# ----------------------------------------------------------------------------------
def _fill_cols(
    cols: np.ndarray,
    xp: np.ndarray,
    rows: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    wo: int,
) -> None:
    """Fill ``cols (n, C, kH, kW, r, W_out)`` with the receptive fields of output rows
    ``rows[0]:rows[1]`` of the padded batch ``xp (n, C, Hp, Wp)``."""
    y0, y1 = rows
    for i in range(kernel[0]):
        rs = tap_slice(i * dilation[0] + stride[0] * y0, y1 - y0, stride[0])
        for j in range(kernel[1]):
            cs = tap_slice(j * dilation[1], wo, stride[1])
            cols[:, :, i, j] = xp[:, :, rs, cs]


def _scatter_cols(
    gxp: np.ndarray,
    cols: np.ndarray,
    rows: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    wo: int,
) -> None:
    """Adjoint of :func:`_fill_cols`: add ``cols (n, C, kH, kW, r, W_out)`` back into
    ``gxp (n, C, Hp, Wp)`` (overlapping receptive fields accumulate)."""
    y0, y1 = rows
    for i in range(kernel[0]):
        rs = tap_slice(i * dilation[0] + stride[0] * y0, y1 - y0, stride[0])
        for j in range(kernel[1]):
            cs = tap_slice(j * dilation[1], wo, stride[1])
            gxp[:, :, rs, cs] += cols[:, :, i, j]


def _geometry(name: str, x_shape, kernel_size, stride, padding, dilation):
    kh, kw = as_pair("kernel_size", kernel_size)
    sh, sw = as_pair("stride", stride)
    ph, pw = as_pair("padding", padding, minimum=0)
    dh, dw = as_pair("dilation", dilation)
    h, w = x_shape[-2:]
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if eh > h + 2 * ph or ew > w + 2 * pw:
        raise ValueError(
            f"kernel_size: got {(kh, kw)} (dilated {(eh, ew)}); expected at most the padded "
            f"input size {(h + 2 * ph, w + 2 * pw)} of {name} with spatial shape {(h, w)} "
            f"and padding {(ph, pw)}"
        )
    ho, wo = out_len(h + 2 * ph, kh, sh, dh), out_len(w + 2 * pw, kw, sw, dw)
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo)


def im2col(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a column (like ``torch.nn.functional.unfold``).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel_size, stride, padding, dilation : int or pair of int
        ``padding`` zero-pads both sides of each spatial axis.

    Returns
    -------
    cols : ndarray, shape (N, C*kH*kW, H_out*W_out)
        Row ``c*kH*kW + i*kW + j`` holds input channel ``c`` seen through kernel tap
        ``(i, j)``, so ``weight.reshape(C_out, -1) @ cols[n]`` is a convolution. The
        whole matrix is built at once (the layers build it in chunks instead).
    """
    x = as_array("x", x, ndim=4, floating=True)
    k, s, p, d, (ho, wo) = _geometry("x", x.shape, kernel_size, stride, padding, dilation)
    xp = pad_hw(x, ((p[0], p[0]), (p[1], p[1])))
    n, c = x.shape[:2]
    cols = np.empty((n, c, k[0], k[1], ho, wo), dtype=x.dtype)
    _fill_cols(cols, xp, (0, ho), k, s, d, wo)
    return cols.reshape(n, c * k[0] * k[1], ho * wo)


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Fold columns back into an image, summing overlaps (the adjoint of :func:`im2col`).

    Parameters
    ----------
    cols : array_like, shape (N, C*kH*kW, H_out*W_out)
    x_shape : tuple (N, C, H, W)
        Shape of the image that :func:`im2col` unfolded.
    kernel_size, stride, padding, dilation : int or pair of int
        As given to :func:`im2col`.

    Returns
    -------
    x : ndarray, shape (N, C, H, W)
        ``<im2col(x), cols> == <x, col2im(cols)>`` for all ``x``; padding is cropped
        away. Input pixels no window touches (stride that does not divide) are zero.
    """
    cols = as_array("cols", cols, ndim=3, floating=True)
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4:
        raise ValueError(f"x_shape: got {x_shape!r}; expected a tuple (N, C, H, W)")
    n, c, h, w = (check_positive_int("x_shape", v) for v in x_shape)
    k, s, p, d, (ho, wo) = _geometry("x_shape", (h, w), kernel_size, stride, padding, dilation)
    expected = (n, c * k[0] * k[1], ho * wo)
    if cols.shape != expected:
        raise ValueError(f"cols: got shape {cols.shape}; expected {expected} for x_shape {tuple(x_shape)}")
    gxp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=cols.dtype)
    _scatter_cols(gxp, cols.reshape(n, c, k[0], k[1], ho, wo), (0, ho), k, s, d, wo)
    return gxp[:, :, p[0] : p[0] + h, p[1] : p[1] + w].copy()


def _cols_limit() -> int:
    return min(get_memory_budget(), _CACHE_CHUNK)


def _flat_limit(itemsize: int) -> int:
    return min(get_memory_budget(), _FLAT_CHUNK_ELEMENTS * itemsize)


# ----------------------------------------------------------------------------------
# "im2col" on the flattened, padded image (the fast path for NCHW layers)
# ----------------------------------------------------------------------------------
# Each image is zero padded and stored flat (Hp*Wp). For stride 1 the input that
# kernel tap (i, j) meets at output (y, x) is flat[(y*Wp + x) + (i*dh*Wp + j*dw)]: on
# the grid of Ho rows of Wp "output columns" (Wp - Wo of them garbage, cropped at
# the end), the receptive field of tap (i, j) is ONE contiguous slice of the flat
# image. The column matrix is therefore built with kH*kW contiguous block copies
# (no gathers), and one GEMM per chunk computes every output. A stride s is turned
# into stride 1 by splitting the padded image into its s_h*s_w polyphase components
# x[a::s_h, b::s_w]: tap (i, j) reads component (i*dh % s_h, j*dw % s_w) at offset
# (i*dh // s_h, j*dw // s_w), so strided layers need no wasted multiply-adds.


class FlatPlan:
    """Geometry of the flat layout for one (padded size, kernel, stride, dilation)."""

    def __init__(self, hp, wp, kernel, stride, dilation):
        (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
        self.ho, self.wo = out_len(hp, kh, sh, dh), out_len(wp, kw, sw, dw)
        self.hq, self.wq = -(-hp // sh), -(-wp // sw)  # size of one polyphase component
        self.phases = sorted({((i * dh) % sh, (j * dw) % sw) for i in range(kh) for j in range(kw)})
        index = {ab: k for k, ab in enumerate(self.phases)}
        self.taps = [
            (index[(i * dh) % sh, (j * dw) % sw], (i * dh // sh) * self.wq + j * dw // sw)
            for i in range(kh)
            for j in range(kw)
        ]
        # the last tap of the last output row may read a little past the component
        self.flen = max(self.hq * self.wq, max(off for _, off in self.taps) + self.ho * self.wq)
        # component rows that output rows y0:y1 read: y0 : y1 + reach (+1: a tap's
        # columns may run past the end of the last row)
        self.reach = (dh * (kh - 1)) // sh + 1


def _fill_phases(buf: np.ndarray, x: np.ndarray, n0: int, q_first: int, pads: Pads, stride, plan) -> None:
    """``buf (m, P, C, rows*Wq)`` <- rows ``q_first : q_first + rows`` of every polyphase
    component ``x_pad[a::s_h, b::s_w]`` (flattened) of images ``n0 : n0 + m`` of ``x``
    zero-padded by ``pads``: the part of them that one chunk of output rows reads. For
    stride 1 the one component is the padded image itself."""
    m, _, c, flat = buf.shape
    for k, phase in enumerate(plan.phases):
        grid = buf[:, k].reshape(m, c, flat // plan.wq, plan.wq)
        fill_component(grid, x, n0, pads, stride, phase, q_first)


def _chunk_cols(ws, x, n0: int, n1: int, y0: int, y1: int, pads: Pads, stride, plan: FlatPlan, groups: int):
    """The column matrix ``(groups, taps, C/groups, m, r*Wq)`` of output rows ``y0:y1`` of
    images ``n0:n1``: the chunk's rows of the polyphase components, then one block copy
    per tap, all in the thread's work arrays."""
    m, r, c = n1 - n0, y1 - y0, x.shape[1]
    phases = ws.get("phases", (m, len(plan.phases), c, (r + plan.reach) * plan.wq))
    _fill_phases(phases, x, n0, y0, pads, stride, plan)
    cols = ws.get("cols", (groups, len(plan.taps), c // groups, m, r * plan.wq))
    _fill_flat_cols(cols, phases, plan, groups)
    return cols


def _flat_chunks(n: int, rows: int, plan: FlatPlan, col_bytes: int, other_bytes: int, itemsize: int):
    """Chunks ``(n0, n1, y0, y1)`` of ``rows`` output rows whose column matrix
    (``col_bytes`` per position) stays within the size measured fastest, and whose
    buffers (the column matrix and ``other_bytes`` per position of products or
    ``grad_out`` rows) stay within the memory budget. Each thread holds one chunk at a
    time, so both limits are shared out over the threads."""
    workers = worker_count()
    share = col_bytes / max(1, col_bytes + other_bytes)  # of a chunk's buffers
    budget = int(get_memory_budget() // workers * share)
    limit = max(1, min(_flat_limit(itemsize) // workers, budget))
    return row_chunks(n, rows, col_bytes * plan.wq, limit, workers)


def _fill_flat_cols(cols, ph, plan, groups) -> None:
    """``cols (groups, taps, C/groups, m, r*Wq)`` <- shifted slices of a chunk's rows of
    the polyphase components ``ph (m, P, C, (r + reach)*Wq)`` (:func:`_fill_phases`)."""
    m, cg, length = ph.shape[0], cols.shape[2], cols.shape[4]
    for t, (k, off) in enumerate(plan.taps):
        src = ph[:, k, :, off : off + length]  # (m, C, r*Wq): contiguous rows
        cols[:, t] = src.reshape(m, groups, cg, length).transpose(1, 2, 0, 3)


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """``(O, C/g, kH, kW)`` -> ``(g, O/g, kH*kW*C/g)`` in tap-major order (matches cols)."""
    o, cg, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(groups, o // groups, cg, kh * kw).transpose(0, 1, 3, 2)).reshape(
        groups, o // groups, kh * kw * cg
    )


def corr_flat(x, pads, w, stride, dilation, groups, bias=None):
    """Cross-correlation of ``x (N, C, H, W)`` zero-padded by ``pads`` with ``w``, plus
    ``bias (O,)`` if given (added to each chunk's products while they are in the cache).
    Chunks of output rows run on conv_lib's threads (:func:`run_chunks`)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    plan = FlatPlan(h + sum(pads[0]), wd + sum(pads[1]), (kh, kw), stride, dilation)
    taps = kh * kw
    kk = taps * cg
    wm = _weight_matrix(w, groups)
    ho, wo, wq = plan.ho, plan.wo, plan.wq
    out = np.empty((n, o, ho, wo), dtype=x.dtype)
    chunks = _flat_chunks(n, ho, plan, taps * c * x.itemsize, o * x.itemsize, x.itemsize)

    def work(k0: int, k1: int) -> None:
        ws = thread_workspace(x.dtype)
        for n0, n1, y0, y1 in chunks[k0:k1]:
            m, r = n1 - n0, y1 - y0
            cols = _chunk_cols(ws, x, n0, n1, y0, y1, pads, stride, plan, groups)
            res = ws.get("res", (groups, o // groups, m * r * wq))
            np.matmul(wm, cols.reshape(groups, kk, m * r * wq), out=res)
            if bias is not None:
                res += bias.reshape(groups, o // groups, 1)
            out[n0:n1, :, y0:y1] = res.reshape(o, m, r, wq)[..., :wo].transpose(1, 0, 2, 3)

    run_chunks(work, len(chunks))
    return out


def grad_weight_flat(g, x, pads, w_shape, stride, dilation, groups):
    """``(grad_w, grad_b)``: ``grad_w[o, c, i, j] = sum g[n, o, y, x] * x_pad[n, c, s*y + d*i, s*x + d*j]``
    and ``grad_b[o] = sum g[n, o, y, x]``:
    one GEMM ``grad (O, positions) @ cols.T (positions, taps*C)`` per chunk, on the
    flat grid (grad_out is zero-extended to Wq columns, so the garbage columns of the
    column matrix are multiplied by zero); chunks run on conv_lib's threads."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w_shape
    plan = FlatPlan(h + sum(pads[0]), wd + sum(pads[1]), (kh, kw), stride, dilation)
    taps, og = kh * kw, o // groups
    kk = taps * cg
    wo, wq = plan.wo, plan.wq
    chunks = _flat_chunks(n, plan.ho, plan, taps * c * x.itemsize, o * x.itemsize, x.itemsize)

    def work(k0: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
        ws = thread_workspace(x.dtype)
        gwt = np.zeros((groups, kk, og), dtype=x.dtype)  # grad_w transposed
        gb = np.zeros(o, dtype=x.dtype)
        for n0, n1, y0, y1 in chunks[k0:k1]:
            m, r = n1 - n0, y1 - y0
            cols = _chunk_cols(ws, x, n0, n1, y0, y1, pads, stride, plan, groups)
            gg = ws.get("grad", (o, m, r, wq))
            gg[..., :wo] = g[n0:n1, :, y0:y1].transpose(1, 0, 2, 3)
            gg[..., wo:] = 0  # the garbage columns of cols must meet zeros
            # cols @ grad^T rather than grad @ cols^T: the same products, ~15 % faster in
            # OpenBLAS here (the long axis of both operands is the contracted one)
            part = np.matmul(
                cols.reshape(groups, kk, m * r * wq),
                gg.reshape(groups, og, m * r * wq).transpose(0, 2, 1),
                out=ws.get("gwt", (groups, kk, og)),
            )
            gwt += part
            gb += gg.reshape(o, m * r * wq).sum(axis=1)
        return gwt, gb

    parts = run_chunks(work, len(chunks))
    gwt = sum(part[0] for part in parts)  # (groups, taps*cg, og), tap-major rows
    gw = np.ascontiguousarray(gwt.reshape(groups, taps, cg, og).transpose(0, 3, 2, 1)).reshape(w_shape)
    return gw, sum(part[1] for part in parts)


def grad_input_flat(g, w, x_hw, pads, dilation, groups):
    """Gradient w.r.t. the (cropped) input of a stride-1 layer: the "full"
    cross-correlation of ``grad_out`` with the flipped kernel, channels transposed,
    computed by :func:`corr_flat` on a padding chosen so that only the input's own
    rows and columns are produced."""
    o, cg, kh, kw = w.shape
    og = o // groups
    eh, ew = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    (pt, pb), (pl, pr) = pads
    wt = w.reshape(groups, og, cg, kh, kw).transpose(0, 2, 1, 3, 4).reshape(groups * cg, og, kh, kw)
    wt = wt[..., ::-1, ::-1]
    # padding larger than the dilated kernel: compute the extra rows, then crop them
    gpads = ((max(0, eh - pt), max(0, eh - pb)), (max(0, ew - pl), max(0, ew - pr)))
    out = corr_flat(g, gpads, wt, (1, 1), dilation, groups)
    top, left = max(0, pt - eh), max(0, pl - ew)
    if out.shape[2:] != tuple(x_hw):
        out = np.ascontiguousarray(out[:, :, top : top + x_hw[0], left : left + x_hw[1]])
    return out


def _from_phases(ph: np.ndarray, x_shape, pads: Pads, stride: tuple[int, int], plan: FlatPlan) -> np.ndarray:
    """The adjoint of :func:`_fill_phases` over all rows (without the zero padding):
    ``(N, C, H, W)`` from the polyphase components ``ph (N, P, C, flen)`` of the padded
    image; input pixels in no component (a dilation that skips them) are zero."""
    n, c = x_shape[:2]
    hq, wq = plan.hq, plan.wq
    out = np.zeros(x_shape, dtype=ph.dtype)
    for k, phase in enumerate(plan.phases):
        window = component_window(x_shape[2:], pads, stride, phase, 0, (hq, wq))
        if window is not None:
            rows_in, cols_in, x_rows, x_cols = window
            out[:, :, x_rows, x_cols] = ph[:, k, :, : hq * wq].reshape(n, c, hq, wq)[:, :, rows_in, cols_in]
    return out


def grad_input_flat_strided(g, w, x_shape, pads, stride, dilation, groups):
    """Gradient w.r.t. the (unpadded) input of any layer, on the flat grid: per chunk of
    output rows, ``W^T @ grad_out`` gives every tap's contribution (one GEMM), and each
    tap adds its block to ONE contiguous slice of a polyphase component of the padded
    input (the adjoint of :func:`_fill_flat_cols`; no strided scatter). Chunks of whole
    images write to their own images; bands of one image's rows overlap, so each thread
    then adds into its own copy, summed at the end."""
    n, c = x_shape[:2]
    o, cg, kh, kw = w.shape
    og, taps = o // groups, kh * kw
    plan = FlatPlan(x_shape[2] + sum(pads[0]), x_shape[3] + sum(pads[1]), (kh, kw), stride, dilation)
    # grad_out may cover fewer rows/columns than the input allows (a transposed
    # convolution's output padding): the input's extra rows receive nothing
    ho, wo, wq = g.shape[2], g.shape[3], plan.wq
    # (groups, taps*cg, og): row (t, c) of group gi is w[gi*og:(gi+1)*og, c, tap t]
    wt = np.ascontiguousarray(_weight_matrix(w, groups).transpose(0, 2, 1))
    chunks = _flat_chunks(n, ho, plan, taps * c * g.itemsize, o * g.itemsize, g.itemsize)
    shape = (n, len(plan.phases), c, plan.flen)
    whole_images = all(y0 == 0 and y1 == ho for _, _, y0, y1 in chunks)
    shared = np.zeros(shape, dtype=g.dtype) if whole_images else None

    def work(k0: int, k1: int) -> np.ndarray | None:
        ws = thread_workspace(g.dtype)
        acc = shared if shared is not None else np.zeros(shape, dtype=g.dtype)
        for n0, n1, y0, y1 in chunks[k0:k1]:
            m, r = n1 - n0, y1 - y0
            gg = ws.get("grad", (o, m, r, wq))
            gg[..., :wo] = g[n0:n1, :, y0:y1].transpose(1, 0, 2, 3)
            gg[..., wo:] = 0  # garbage columns: nothing flows back from them
            cols = ws.get("cols", (groups, taps * cg, m * r * wq))
            np.matmul(wt, gg.reshape(groups, og, m * r * wq), out=cols)
            per_tap = cols.reshape(groups, taps, cg, m, r * wq)
            p0, p1 = y0 * wq, y1 * wq
            for t, (k, off) in enumerate(plan.taps):
                dst = acc[n0:n1, k, :, off + p0 : off + p1].reshape(m, groups, cg, p1 - p0)
                dst += per_tap[:, t].transpose(2, 0, 1, 3)
        return None if shared is not None else acc

    parts = [part for part in run_chunks(work, len(chunks)) if part is not None]
    total = shared if shared is not None else sum(parts)
    return _from_phases(total, tuple(x_shape), pads, stride, plan)
