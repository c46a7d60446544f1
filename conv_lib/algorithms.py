"""How a convolution is computed: direct, im2col + GEMM, or FFT, and how to choose.

Every public layer (``correlate2d``, ``convolve2d``, ``conv2d``, ``conv2d_backward``)
takes ``method=`` with one of :data:`METHODS` or ``"auto"``; ``"auto"`` asks
:func:`choose_method`. All three methods compute the same cross-correlation (they
agree to rounding error; with integer-valued inputs "direct" and "im2col" are exact):

``"direct"``
    The reference: one pass per kernel tap ``(i, j)``; the input shifted by the tap is
    multiplied by the kernel value (or, for many channels, by the ``(C_out, C_in)``
    matrix of that tap) and added to the output. No large intermediate. For a
    single-channel 2-D image with a small kernel this is also the fastest method; it
    then works in cache-sized row blocks, split over the CPU cores.
``"im2col"``
    Copies every receptive field into a column (:func:`im2col`) and computes all
    outputs with one matrix product ``W (C_out, C_in*kH*kW) @ cols``. The columns are
    built a chunk at a time (a few images, or a band of output rows) so that they
    never exceed the memory budget (:func:`set_memory_budget`), and a chunk of a few
    MiB also stays in the CPU cache. Fastest for deep-learning layers.
``"fft"``
    Multiplies spectra (convolution theorem) using ``scipy.fft.rfft2`` with fast
    lengths; cost independent of the kernel size, so it wins for big kernels. Strided
    outputs are computed at stride 1 and subsampled; batches are chunked under the
    memory budget.

Shapes follow torch: ``x: (N, C_in, H, W)``, ``weight: (C_out, C_in/groups, kH, kW)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.fft

from conv_lib.validation import as_array, as_pair, check_choice, check_positive_int

__all__ = [
    "METHODS",
    "choose_method",
    "col2im",
    "get_memory_budget",
    "im2col",
    "set_memory_budget",
]

METHODS: tuple[str, ...] = ("direct", "im2col", "fft")

_DEFAULT_BUDGET = 256 * 2**20
_memory_budget = _DEFAULT_BUDGET
# Chunks of the im2col matrix are kept near this size even when the budget is larger:
# a few MiB stay in the CPU cache, which makes the copy and the GEMM faster.
_CACHE_CHUNK = 4 * 2**20

Pads = tuple[tuple[int, int], tuple[int, int]]


# ----------------------------------------------------------------------------------
# memory budget
# ----------------------------------------------------------------------------------
def set_memory_budget(nbytes: int) -> None:
    """Set the largest intermediate (in bytes) a chunked path may allocate at once.

    Applies to the im2col matrices of ``"im2col"`` and to the spectra of ``"fft"``
    (forward and backward). The chunk is never smaller than one output row of one
    image (im2col) or one image (fft), so a tiny budget is honoured as far as that
    allows. Default 256 MiB.

    Parameters
    ----------
    nbytes : int
        Budget in bytes, >= 1.
    """
    global _memory_budget
    _memory_budget = check_positive_int("nbytes", nbytes)


def get_memory_budget() -> int:
    """Return the current memory budget in bytes (see :func:`set_memory_budget`)."""
    return _memory_budget


# ----------------------------------------------------------------------------------
# small shared helpers
# ----------------------------------------------------------------------------------
def _out_len(n_padded: int, kernel: int, stride: int, dilation: int) -> int:
    """Output length along one axis for an already padded input length."""
    return (n_padded - dilation * (kernel - 1) - 1) // stride + 1


def _tap_slice(start: int, count: int, stride: int) -> slice:
    """Slice selecting ``count`` elements ``start, start+stride, ...``."""
    return slice(start, start + stride * (count - 1) + 1, stride)


def _pad_hw(x: np.ndarray, pads: Pads) -> np.ndarray:
    """Zero-pad the last two axes by ``((top, bottom), (left, right))``."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    out = np.zeros(x.shape[:-2] + (x.shape[-2] + pt + pb, x.shape[-1] + pl + pr), dtype=x.dtype)
    out[..., pt : pt + x.shape[-2], pl : pl + x.shape[-1]] = x
    return out


def _result_dtype(*arrays: np.ndarray) -> np.dtype:
    dtype = np.result_type(*arrays)
    return np.dtype(np.float64) if dtype.kind not in "f" else dtype


_executor: ThreadPoolExecutor | None = None


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _run_parallel(fn: Callable[[int, int], None], total: int, min_per_worker: int) -> None:
    """Call ``fn(start, stop)`` on contiguous parts of ``range(total)``, in threads.

    NumPy releases the GIL inside its element-wise loops, so row bands of an image
    run truly in parallel.
    """
    global _executor
    workers = min(_workers(), max(1, total // max(1, min_per_worker)))
    if workers <= 1:
        fn(0, total)
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="conv_lib")
    bounds = [total * k // workers for k in range(workers + 1)]
    futures = [_executor.submit(fn, bounds[k], bounds[k + 1]) for k in range(workers)]
    for fut in futures:
        fut.result()


# ----------------------------------------------------------------------------------
# choosing a method
# ----------------------------------------------------------------------------------
# Cost model, in nanoseconds, fitted on a 2-core AVX-512 machine (see bench/README.md).
_NS_PER_TAP_PIXEL = 0.45  # "direct" 2-D: one multiply-add per tap and output pixel
_NS_PER_FFT_POINT_LOG = 0.45  # one rfft2/irfft2 point, per log2(size)
_NS_PER_GEMM_MAC = 0.02  # im2col GEMM, per multiply-add (float64; float32 is ~2x faster)
_NS_PER_COL_COPY = 0.3  # im2col, per element copied into the column matrix
_NS_PER_SPECTRAL_MAC = 1.5  # numpy complex multiply-add per frequency (channel mixing)


def choose_method(
    x_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    dtype: Any = None,
) -> str:
    """Pick the method ``"auto"`` uses, from the shapes alone.

    The heuristic is a cost model (constants measured with ``bench/bench_conv.py``):

    * 2-D (``x_shape`` = ``(H, W)`` and ``weight_shape`` = ``(kH, kW)``): ``"direct"``
      costs about ``kH*kW*H_out*W_out`` multiply-adds; ``"fft"`` costs about three FFTs
      of the padded size. FFT wins from roughly 7x7 kernels on large images; tiny
      images always use ``"direct"``.
    * NCHW (4-D shapes): ``"im2col"`` (building the columns, then one big matrix
      product) unless the kernel is large enough that the FFT's channel mixing
      (``N*C_out*C_in/groups`` complex multiply-adds per frequency) plus the FFTs is
      cheaper; strided or dilated layers never use FFT.
    * Integer ``dtype`` (2-D only) never picks ``"fft"``, so results stay exact.

    Parameters
    ----------
    x_shape : tuple of int
        ``(H, W)`` or ``(N, C_in, H, W)`` (unpadded; padding changes little).
    weight_shape : tuple of int
        ``(kH, kW)`` or ``(C_out, C_in/groups, kH, kW)``.
    stride, dilation : int or pair of int
    dtype : numpy dtype, optional
        Input dtype; integer or bool excludes ``"fft"``.

    Returns
    -------
    str
        One of :data:`METHODS`.
    """
    x_shape = tuple(int(v) for v in x_shape)
    weight_shape = tuple(int(v) for v in weight_shape)
    if len(x_shape) not in (2, 4) or len(weight_shape) != len(x_shape):
        raise ValueError(
            f"x_shape, weight_shape: got {x_shape} and {weight_shape}; expected both 2-D "
            "((H, W), (kH, kW)) or both 4-D ((N, C, H, W), (C_out, C_in/groups, kH, kW))"
        )
    sh, sw = as_pair("stride", stride)
    dh, dw = as_pair("dilation", dilation)
    exact = dtype is not None and np.dtype(dtype).kind in "biu"
    kh, kw = weight_shape[-2:]
    h, w = x_shape[-2:]
    ho = max(1, _out_len(h, kh, sh, dh))
    wo = max(1, _out_len(w, kw, sw, dw))
    taps = kh * kw
    fft_points = scipy.fft.next_fast_len(h, real=True) * scipy.fft.next_fast_len(w, real=True)
    fft_unit = fft_points * math.log2(max(fft_points, 2)) * _NS_PER_FFT_POINT_LOG
    if len(x_shape) == 2:
        if exact or sh != 1 or sw != 1 or taps <= 9:
            return "direct"
        direct_cost = _NS_PER_TAP_PIXEL * taps * ho * wo
        fft_cost = 3 * fft_unit
        return "fft" if fft_cost < direct_cost else "direct"
    n, c = x_shape[:2]
    c_out, c_per_group = weight_shape[:2]
    if (sh, sw, dh, dw) != (1, 1, 1, 1) or taps <= 9:
        return "im2col"
    gemm_cost = (_NS_PER_GEMM_MAC * c_out * c_per_group + _NS_PER_COL_COPY * c) * n * taps * ho * wo
    fft_cost = (n * c + n * c_out + c_out * c_per_group) * fft_unit + _NS_PER_SPECTRAL_MAC * n * c_out * (
        c_per_group * fft_points / 2
    )
    return "fft" if fft_cost < gemm_cost else "im2col"


def _resolve_method(method: Any, x_shape, weight_shape, stride, dilation, dtype=None) -> str:
    check_choice("method", method, ("auto",) + METHODS)
    if method == "auto":
        return choose_method(x_shape, weight_shape, stride, dilation, dtype)
    return method


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
        rs = _tap_slice(i * dilation[0] + stride[0] * y0, y1 - y0, stride[0])
        for j in range(kernel[1]):
            cs = _tap_slice(j * dilation[1], wo, stride[1])
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
        rs = _tap_slice(i * dilation[0] + stride[0] * y0, y1 - y0, stride[0])
        for j in range(kernel[1]):
            cs = _tap_slice(j * dilation[1], wo, stride[1])
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
    ho, wo = _out_len(h + 2 * ph, kh, sh, dh), _out_len(w + 2 * pw, kw, sw, dw)
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
    xp = _pad_hw(x, ((p[0], p[0]), (p[1], p[1])))
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


def _chunks(n: int, rows: int, bytes_per_row: int, limit: int):
    """Yield ``(n0, n1, y0, y1)`` blocks of (images, output rows) of at most ``limit``
    bytes: several whole images if they fit, else bands of rows of one image."""
    per_image = bytes_per_row * rows
    if per_image <= limit:
        step = max(1, limit // max(per_image, 1))
        for n0 in range(0, n, step):
            yield n0, min(n, n0 + step), 0, rows
    else:
        band = max(1, limit // max(bytes_per_row, 1))
        for n0 in range(n):
            for y0 in range(0, rows, band):
                yield n0, n0 + 1, y0, min(rows, y0 + band)


def _cols_limit() -> int:
    return min(_memory_budget, _CACHE_CHUNK)


# ----------------------------------------------------------------------------------
# forward: valid cross-correlation of an already padded batch
# ----------------------------------------------------------------------------------
def corr_nchw(
    xp: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    method: str,
) -> np.ndarray:
    """Valid cross-correlation ``xp (N, C, Hp, Wp)`` with ``w (O, C/g, kH, kW)``.

    Inputs are validated by the caller; returns ``(N, O, H_out, W_out)`` in the
    common floating dtype.
    """
    dtype = _result_dtype(xp, w)
    xp = xp.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    if method == "direct":
        return _corr_direct(xp, w, stride, dilation, groups)
    if method == "im2col":
        return _corr_im2col(xp, w, stride, dilation, groups)
    return _corr_fft(xp, w, stride, dilation, groups)


def _corr_direct(xp, w, stride, dilation, groups):
    n, c, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    ho, wo = _out_len(hp, kh, stride[0], dilation[0]), _out_len(wp, kw, stride[1], dilation[1])
    if n == c == o == 1:  # single-channel 2-D image: shifted multiply-adds
        out = np.empty((ho, wo), dtype=xp.dtype)
        _corr2d_taps(xp[0, 0], w[0, 0], out, stride, dilation)
        return out.reshape(1, 1, ho, wo)
    out = np.zeros((n, groups, o // groups, ho * wo), dtype=xp.dtype)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    for i in range(kh):
        rs = _tap_slice(i * dilation[0], ho, stride[0])
        for j in range(kw):
            cs = _tap_slice(j * dilation[1], wo, stride[1])
            xs = xp[:, :, rs, cs].reshape(n, groups, cg, ho * wo)
            out += np.ascontiguousarray(wg[:, :, :, i, j]) @ xs
    return out.reshape(n, o, ho, wo)


def _corr2d_taps(img, k, out, stride=(1, 1), dilation=(1, 1)) -> None:
    """``out = valid_correlate(img, k)`` by one multiply-add per tap, in row bands
    of about 256 KiB (cache resident), split over threads."""
    ho, wo = out.shape
    kh, kw = k.shape
    (sh, sw), (dh, dw) = stride, dilation
    band = max(1, (256 * 1024) // max(1, wo * out.itemsize))
    taps = [(i, j, k[i, j]) for i in range(kh) for j in range(kw)]

    def work(r0: int, r1: int) -> None:
        tmp = np.empty((min(band, r1 - r0), wo), dtype=out.dtype)
        for y0 in range(r0, r1, band):
            r = min(band, r1 - y0)
            o, t = out[y0 : y0 + r], tmp[:r]
            for m, (i, j, kv) in enumerate(taps):
                src = img[_tap_slice(i * dh + sh * y0, r, sh), _tap_slice(j * dw, wo, sw)]
                if m == 0:
                    np.multiply(src, kv, out=o)
                else:
                    np.multiply(src, kv, out=t)
                    o += t

    _run_parallel(work, ho, min_per_worker=max(band, 64))


def _corr_im2col(xp, w, stride, dilation, groups):
    n, c, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    ho, wo = _out_len(hp, kh, stride[0], dilation[0]), _out_len(wp, kw, stride[1], dilation[1])
    out = np.empty((n, o, ho, wo), dtype=xp.dtype)
    kk = cg * kh * kw
    wm = w.reshape(groups, o // groups, kk)
    bytes_per_row = c * kh * kw * wo * xp.itemsize
    for n0, n1, y0, y1 in _chunks(n, ho, bytes_per_row, _cols_limit()):
        nb, r = n1 - n0, y1 - y0
        cols = np.empty((nb, c, kh, kw, r, wo), dtype=xp.dtype)
        _fill_cols(cols, xp[n0:n1], (y0, y1), (kh, kw), stride, dilation, wo)
        res = wm @ cols.reshape(nb, groups, kk, r * wo)  # (nb, g, O/g, r*wo)
        out[n0:n1, :, y0:y1] = res.reshape(nb, o, r, wo)
    return out


def _fft_shape(hp: int, wp: int) -> tuple[int, int]:
    # circular correlation of length >= Hp leaves the valid part unaliased
    return scipy.fft.next_fast_len(hp, real=True), scipy.fft.next_fast_len(wp, real=True)


def _dilate_kernel(w: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    if dilation == (1, 1):
        return w
    kh, kw = w.shape[-2:]
    out = np.zeros(w.shape[:-2] + (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1), dtype=w.dtype)
    out[..., :: dilation[0], :: dilation[1]] = w
    return out


def _corr_fft(xp, w, stride, dilation, groups):
    """FFT path. Works group by group, on blocks of output channels and of images
    sized so that the spectra in flight stay within the memory budget."""
    n, c, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    ho1, wo1 = hp - eh + 1, wp - ew + 1  # stride-1 output
    ho, wo = _out_len(hp, kh, stride[0], dilation[0]), _out_len(wp, kw, stride[1], dilation[1])
    fshape = _fft_shape(hp, wp)
    spec_bytes = 2 * xp.itemsize * fshape[0] * (fshape[1] // 2 + 1)  # one complex spectrum
    half = max(1, _memory_budget // 2)
    ob = int(np.clip(half // (cg * spec_bytes), 1, og))  # weight spectra: <= budget / 2
    nb = int(np.clip(half // ((cg + 2 * ob) * spec_bytes), 1, max(n, 1)))
    out = np.empty((n, o, ho, wo), dtype=xp.dtype)
    for gi in range(groups):
        xg = xp[:, gi * cg : (gi + 1) * cg]
        for o0 in range(gi * og, (gi + 1) * og, ob):
            o1 = min(o0 + ob, (gi + 1) * og)
            wd = _dilate_kernel(w[o0:o1], dilation)
            spec_w = scipy.fft.rfft2(wd[..., ::-1, ::-1], fshape, workers=-1)  # (ob, cg, F...)
            for n0 in range(0, n, nb):
                n1 = min(n, n0 + nb)
                spec_x = scipy.fft.rfft2(xg[n0:n1], fshape, workers=-1)  # (nb, cg, F...)
                prod = spec_x[:, None, 0] * spec_w[None, :, 0]
                for ci in range(1, cg):
                    prod += spec_x[:, None, ci] * spec_w[None, :, ci]
                full = scipy.fft.irfft2(prod, fshape, workers=-1)
                valid = full[..., eh - 1 : eh - 1 + ho1, ew - 1 : ew - 1 + wo1]
                out[n0:n1, o0:o1] = valid[..., :: stride[0], :: stride[1]]
    return out


# ----------------------------------------------------------------------------------
# backward pieces
# ----------------------------------------------------------------------------------
def grad_input_nchw(
    g: np.ndarray,
    w: np.ndarray,
    xp_shape: tuple[int, int, int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    method: str,
) -> np.ndarray:
    """Gradient of ``corr_nchw`` w.r.t. its padded input.

    ``g (N, O, Ho, Wo)``, ``w (O, C/g, kH, kW)``; returns ``(N, C, Hp, Wp)``. This is
    also the transposed convolution. ``"fft"`` falls back to ``"im2col"`` here.
    Padded positions that no window reaches stay zero.
    """
    dtype = _result_dtype(g, w)
    g = g.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    c = cg * groups
    gxp = np.zeros(xp_shape, dtype=dtype)
    wg = w.reshape(groups, og, cg, kh, kw)
    if method == "direct":
        gg = g.reshape(n, groups, og, ho * wo)
        for i in range(kh):
            rs = _tap_slice(i * dilation[0], ho, stride[0])
            for j in range(kw):
                cs = _tap_slice(j * dilation[1], wo, stride[1])
                wt = np.ascontiguousarray(wg[:, :, :, i, j].transpose(0, 2, 1))  # (g, cg, og)
                gxp[:, :, rs, cs] += (wt @ gg).reshape(n, c, ho, wo)
        return gxp
    wt = np.ascontiguousarray(wg.reshape(groups, og, cg * kh * kw).transpose(0, 2, 1))  # (g, K, og)
    bytes_per_row = c * kh * kw * wo * dtype.itemsize
    for n0, n1, y0, y1 in _chunks(n, ho, bytes_per_row, _cols_limit()):
        nb, r = n1 - n0, y1 - y0
        gc = np.ascontiguousarray(g[n0:n1, :, y0:y1]).reshape(nb, groups, og, r * wo)
        cols = (wt @ gc).reshape(nb, c, kh, kw, r, wo)
        _scatter_cols(gxp[n0:n1], cols, (y0, y1), (kh, kw), stride, dilation, wo)
    return gxp


def grad_weight_nchw(
    g: np.ndarray,
    xp: np.ndarray,
    w_shape: tuple[int, int, int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    method: str,
) -> np.ndarray:
    """Gradient of ``corr_nchw`` w.r.t. the weight: returns ``(O, C/g, kH, kW)``.

    ``"fft"`` falls back to ``"im2col"`` here.
    """
    dtype = _result_dtype(g, xp)
    g = g.astype(dtype, copy=False)
    xp = xp.astype(dtype, copy=False)
    n, o, ho, wo = g.shape
    c = xp.shape[1]
    _, cg, kh, kw = w_shape
    og = o // groups
    if method == "direct":
        gw = np.empty((groups, og, cg, kh, kw), dtype=dtype)
        gg = g.reshape(n, groups, og, ho * wo)
        for i in range(kh):
            rs = _tap_slice(i * dilation[0], ho, stride[0])
            for j in range(kw):
                cs = _tap_slice(j * dilation[1], wo, stride[1])
                xs = xp[:, :, rs, cs].reshape(n, groups, cg, ho * wo)
                acc = np.zeros((groups, og, cg), dtype=dtype)
                for b in range(n):
                    for gi in range(groups):
                        acc[gi] += gg[b, gi] @ xs[b, gi].T
                gw[:, :, :, i, j] = acc
        return gw.reshape(w_shape)
    kk = cg * kh * kw
    gw = np.zeros((groups, og, kk), dtype=dtype)
    bytes_per_row = c * kh * kw * wo * dtype.itemsize
    for n0, n1, y0, y1 in _chunks(n, ho, bytes_per_row, _cols_limit()):
        nb, r = n1 - n0, y1 - y0
        cols = np.empty((nb, c, kh, kw, r, wo), dtype=dtype)
        _fill_cols(cols, xp[n0:n1], (y0, y1), (kh, kw), stride, dilation, wo)
        cols = cols.reshape(nb, groups, kk, r * wo)
        gc = g[n0:n1, :, y0:y1].reshape(nb, groups, og, r * wo)
        for b in range(nb):
            for gi in range(groups):  # 2-D products: BLAS reads the transposed view directly
                gw[gi] += gc[b, gi] @ cols[b, gi].T
    return gw.reshape(w_shape)
