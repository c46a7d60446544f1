"""How a convolution is computed: direct, im2col + GEMM, FFT or Winograd, and how to choose.

Every public layer (``correlate2d``, ``convolve2d``, ``conv2d``, ``conv2d_backward``)
takes ``method=`` with one of :data:`METHODS` or ``"auto"`` (the NCHW layers also
``"winograd"``, :data:`LAYER_METHODS`); ``"auto"`` asks :func:`choose_method`. All
methods compute the same cross-correlation (they agree to rounding error; with
integer-valued inputs "direct" and "im2col" are exact):

``"direct"``
    The reference: one pass per kernel tap ``(i, j)``; the input shifted by the tap is
    multiplied by the kernel value (or, for many channels, by the ``(C_out, C_in)``
    matrix of that tap) and added to the output. No large intermediate. For a
    single-channel 2-D image with a small kernel this is also the fastest method: on
    the flattened padded image every tap is one contiguous slice, so each tap is one
    in-place BLAS ``axpy`` over a cache-sized band of rows, the bands spread over the
    CPU cores.
``"im2col"``
    Copies every receptive field into a column and computes all outputs with matrix
    products ``W (C_out, C_in*kH*kW) @ cols``. The layers build the columns on the
    flattened padded image (:class:`conv_lib.im2col_gemm.FlatPlan`): there the input of a tap is one
    contiguous slice for a whole band of output rows, so the column matrix is made of
    ``kH*kW`` block copies (strides become stride 1 by splitting the image into its
    polyphase components), built a chunk at a time (up to 16 MiB, and never more than
    the memory budget, :func:`set_memory_budget`).
    Fastest for most deep-learning layers, forward and backward. :func:`im2col` /
    :func:`col2im` are the textbook (unchunked) versions of the same matrix.
``"winograd"`` (NCHW layers only: 3x3 kernels at stride 1, or, forward only, strided
layers with kernels of at most 4 times the stride; dilation 1)
    Winograd's minimal filtering F(4x4, 3x3), :mod:`conv_lib.winograd`: 36
    multiplications per 4x4 tile of outputs instead of 144, as batched GEMMs, with the
    tile transforms compiled by numba where it is installed
    (:mod:`conv_lib.winograd_kernels`); float32 results carry a larger rounding error
    (``conv_lib.winograd.FLOAT32_RTOL``). Fastest for 3x3 layers with many channels,
    forward and backward. A strided layer is a stride-1 layer over its input's
    polyphase components, computed by F(4x4, 4x4) (:mod:`conv_lib.winograd_strided`):
    faster than im2col on 7x7 and 8x8 stride-2 layers and 11x11 at stride 4. In :data:`LAYER_METHODS`,
    not in :data:`METHODS` (which compute any layer).
``"fft"``
    Multiplies spectra (convolution theorem) using ``scipy.fft.rfft2`` with fast
    lengths; cost independent of the kernel size, so it wins for big kernels. For
    2-D images, like ``scipy.signal.fftconvolve`` but in bands of rows (overlap-save)
    on large images. NCHW: strided outputs are computed at stride 1 and subsampled;
    batches are chunked under the memory budget.

Shapes follow torch: ``x: (N, C_in, H, W)``, ``weight: (C_out, C_in/groups, kH, kW)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from conv_lib import winograd, winograd_kernels, winograd_strided
from conv_lib.im2col_gemm import (
    _cols_limit,
    _fill_cols,
    _scatter_cols,
    col2im,
    corr_flat,
    grad_input_flat,
    grad_input_flat_strided,
    grad_weight_flat,
    im2col,
)
from conv_lib.layout import Pads, out_len, pad_hw, result_dtype, tap_slice
from conv_lib.validation import as_pair, check_choice
from conv_lib.workspace import (
    get_memory_budget,
    row_chunks,
    run_parallel,
    set_memory_budget,
    single_threaded_blas,
    worker_count,
)


def _fft() -> Any:
    """``scipy.fft``, imported on first use: it takes ~0.2 s to import and most uses of
    conv_lib (e.g. every sandboxed grading run) never reach an FFT."""
    import scipy.fft

    return scipy.fft


@functools.lru_cache(maxsize=4096)
def _next_fast_len(n: int) -> int:
    """``scipy.fft.next_fast_len(n, real=True)`` (the smallest 2^a 3^b 5^c >= n) without
    importing scipy.fft, so that choosing a method does not cost the import."""
    if not 1 <= n <= 2**24:
        return int(_fft().next_fast_len(n, real=True))
    if n <= 6:
        return n
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p2 = 1 << (-(-n // p35) - 1).bit_length()
            best = min(best, p2 * p35)
            p35 *= 3
        p5 *= 5
    return best


__all__ = [
    "LAYER_METHODS",
    "METHODS",
    "choose_method",
    "col2im",
    "get_memory_budget",
    "im2col",
    "set_memory_budget",
]

METHODS: tuple[str, ...] = ("direct", "im2col", "fft")
# Methods of the NCHW layers (conv2d, conv2d_backward): the three above, which compute
# any layer, and Winograd's minimal filtering for 3x3 stride-1 layers (conv_lib.winograd).
LAYER_METHODS: tuple[str, ...] = METHODS + ("winograd",)

# Output rows per band of the 2-D FFT path (overlap-save), before rounding up to a
# fast FFT length.
_FFT_BAND_ROWS = 128
# Smallest transform (points) worth running on several threads.
_FFT_THREADS_MIN = 2**17


# ----------------------------------------------------------------------------------
# choosing a method
# ----------------------------------------------------------------------------------
# Cost model, in nanoseconds, fitted on the course's 2-core AVX-512 machine with
# bench/bench_conv.py (float64 for the 2-D constants; see bench/README.md).
_NS_PER_TAP_PIXEL = 0.5  # 2-D "direct": one BLAS axpy element per tap and output pixel
_NS_PER_FFT2D_POINT_LOG = 1.0  # 2-D "fft": per transformed point (band), per log2(size)
_NS_PER_FFT_POINT_LOG = 0.45  # NCHW "fft": one rfft2/irfft2 point, per log2(size)
_NS_PER_GEMM_MAC = 0.02  # im2col GEMM, per multiply-add (float64; float32 is ~2x faster)
_NS_PER_COL_COPY = 0.3  # im2col, per element copied into the column matrix
_NS_PER_SPECTRAL_MAC = 1.5  # numpy complex multiply-add per frequency (channel mixing)


# Winograd F(4x4, 3x3) (conv_lib.winograd): its batched GEMMs multiply (C_out, C_in)
# by (C_in, tiles of one chunk), slower per multiply-add than im2col's long GEMMs when
# a chunk holds few tiles (efficiency ~ p / (p + 32) for p tiles); the transforms are
# GEMMs with 36x36 and 16x36 matrices; gathers and scatters are strided copies.
_NS_PER_TILE_COPY = 0.3  # per element of the gathered input tiles and of the output tiles
_NS_WINOGRAD_CALL = 150e3  # fixed cost of a call (threads, weight transform, buffers)
_NS_PER_WINOGRAD_CHUNK = 200e3  # the NumPy calls of one chunk (pads, gathers, GEMMs, writes)
_NS_IM2COL_CALL = 30e3
# With the compiled transforms (conv_lib.winograd_kernels), fitted to the forward times
# of 13 layers (bench/bench_conv.py's method; 3 to 512 channels, 7 to 224 pixels):
# the GEMMs' efficiency ~ p / (p + 44), a transform costs per element of V and of the
# products, every chunk reads the transformed kernels U again, and a call has a fixed
# cost (threads, numba's dispatch, the kernel transform).
_COMPILED_GEMM_FACTOR = 0.86  # per multiply-add, relative to the im2col model's constant
_COMPILED_TILES_HALF = 44  # tiles per chunk at which the GEMMs run at half speed
_NS_PER_TRANSFORMED_ELEMENT = 0.46
_NS_PER_KERNEL_ELEMENT_READ = 0.26
_NS_COMPILED_WINOGRAD_CALL = 155e3
# Strided layers by Winograd over the polyphase components (conv_lib.winograd_strided,
# compiled transforms only): 49/16*s_h*s_w multiplications per output and input channel
# against im2col's kH*kW. Taken where that ratio is at most 0.45: on the strided layers
# of bench/bench_conv.py --only choice (float32) it took 0.29-0.85 of im2col's time at
# ratios 0.19-0.41 (7x7 and 8x8 at stride 2, 11x11 at stride 4), from (1, 2, 12, 12) ->
# 2 up to (8, 3, 224, 224) -> 64, and 1.09x and 2.64x as long at 0.49 (5x5 at stride 2)
# and 1.36 (3x3 at stride 2). Only on layers of at least 64 output tiles (4x4) in all:
# every call transforms the kernels (49*C_out*C_in/g*s_h*s_w values), which on deep
# layers with small outputs cost more than the products save (a review timed
# (1, 512, 14, 14) -> 512, 7x7 stride 2, 4 tiles, at 4.7x im2col's time and
# (2, 256, 28, 28) -> 256, 32 tiles, at 1.26x), and the first call in a process waits
# ~10 s for the compiler, which small layers do not repay.
_STRIDED_WINOGRAD_MAC_RATIO = 0.45
_STRIDED_WINOGRAD_MIN_TILES = 64


def _winograd_cost(
    n: int, c: int, c_out: int, c_per_group: int, ho: int, wo: int, gemm_ns: float, itemsize: int = 4
) -> float:
    """Modelled nanoseconds of ``method="winograd"`` (tile 4x4, chunks as conv_lib.winograd
    plans them for ``itemsize``-byte elements), on the compiled transforms where they
    are available. Fitted on padding-1 layers (``ho x wo`` outputs)."""
    compiled = winograd_kernels.available()
    plan = winograd._TilePlan(ho + 2, wo + 2, ((0, 0), (0, 0)), winograd.TILE, garbage=not compiled)
    chunks = winograd._plan_chunks(n, c, c_out, plan, itemsize, get_memory_budget(), compiled)
    p = max((n1 - n0) * plan.positions(t0, t1) for n0, n1, t0, t1 in chunks)  # tiles per chunk
    if compiled:
        efficiency = p / (p + _COMPILED_TILES_HALF)
        per_tile = 36 * c_out * c_per_group * gemm_ns * _COMPILED_GEMM_FACTOR / efficiency
        per_tile += 36 * (c + c_out) * _NS_PER_TRANSFORMED_ELEMENT
        kernel_reads = len(chunks) * 36 * c_out * c_per_group * _NS_PER_KERNEL_ELEMENT_READ
        return n * plan.th * plan.tw * per_tile + kernel_reads + _NS_COMPILED_WINOGRAD_CALL
    efficiency = p / (p + 32)
    macs = 36 * c_out * c_per_group / efficiency + 36 * 36 * c + 16 * 36 * c_out
    copies = 36 * c + 16 * c_out
    per_image = plan.th * plan.stride
    frame = n * (c * (4 * plan.th + 3) * 4 * plan.stride + c_out * ho * wo)  # padded input, output
    tiles = n * per_image * (macs * gemm_ns + copies * _NS_PER_TILE_COPY)
    calls = len(chunks) / worker_count() * _NS_PER_WINOGRAD_CHUNK
    return tiles + frame * _NS_PER_TILE_COPY + calls + _NS_WINOGRAD_CALL


def _fft2d_whole(ho: int, wo: int, band: int) -> bool:
    """Transform the whole image at once (small images) rather than bands of rows."""
    return ho <= 2 * band or ho * wo < _FFT_THREADS_MIN


def _fft2d_points(h: int, w: int, kh: int, kw: int, ho: int, wo: int) -> tuple[int, int]:
    """(points transformed in all, points of one transform) for :func:`_corr2d_fft`."""
    fw = _next_fast_len(w + kw - 1)
    fb = _next_fast_len(max(_FFT_BAND_ROWS, 4 * (kh - 1)))
    band = fb - kh + 1
    if _fft2d_whole(ho, wo, band):
        fh = _next_fast_len(h + kh - 1)
        return fh * fw, fh * fw
    return -(-ho // band) * fb * fw, fb * fw


def choose_method(
    x_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    dtype: Any = None,
) -> str:
    """Pick the method ``"auto"`` uses, from the shapes alone.

    The heuristic is a cost model (constants measured with ``bench/bench_conv.py``):

    * 2-D (``x_shape`` = ``(H, W)`` and ``weight_shape`` = ``(kH, kW)``): kernels of
      at most 9 taps (3x3), strided calls and integer inputs always use ``"direct"``.
      Otherwise ``"direct"`` costs ``0.5 ns * kH*kW * H_out*W_out`` (one BLAS axpy
      element per tap and pixel) and ``"fft"`` costs ``1 ns * P * log2(p)``, where
      ``P`` is the number of points transformed (bands of ~128 output rows, or the
      whole image if it is small) and ``p`` the size of one transform; the cheaper
      wins. In practice: up to 5x5 "direct", from 9x9 "fft", 7x7 is a close call
      (the two are within ~20 % of each other; the model picks "fft").
    * NCHW (4-D shapes), 3x3 kernels at stride 1 and dilation 1 with a floating (or
      unknown) ``dtype`` and more than one input channel per group (not depthwise):
      ``"winograd"`` if its modelled cost (:func:`_winograd_cost`:
      the batched GEMMs, slower per multiply-add when a chunk holds few tiles, plus
      transforms and copies) is below im2col's, else ``"im2col"``. In practice, on
      the compiled transforms, Winograd for e.g. (8, 64, 14, 14) -> 64,
      (8, 16, 32, 32) -> 16 and grouped layers with 2+ channels per group, im2col for
      (2, 3, 16, 16) -> 4, (4, 3, 224, 224) -> 64 and (8, 512, 7, 7) -> 512
      (``bench/bench_conv.py --only choice`` measures them).
    * NCHW strided layers with large kernels, dilation 1, a floating (or unknown)
      ``dtype``, more than one input channel per group, and compiled transforms:
      ``"winograd"`` over the polyphase components (:mod:`conv_lib.winograd_strided`)
      where its ``49/16*s_h*s_w`` multiplications per output and input channel are
      at most 0.45 of im2col's ``kH*kW`` (7x7 and 8x8 kernels at stride 2, 11x11 at
      stride 4; not 3x3 or 5x5 at stride 2), on layers of at least 64 output tiles of
      4x4 (each call transforms the kernels; e.g. ResNet's stem on one image, 784 tiles,
      but not (2, 256, 28, 28) -> 256, 32 tiles).
    * Other NCHW layers: ``"im2col"`` (building the columns, then one matrix product
      per chunk) unless the kernel is large enough that the FFT's channel mixing
      (``N*C_out*C_in/groups`` complex multiply-adds per frequency) plus the FFTs is
      cheaper; strided or dilated layers never use FFT.
    * Integer ``dtype`` never picks ``"fft"`` or ``"winograd"``, so results stay exact.

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
        One of :data:`METHODS`, or ``"winograd"`` for 4-D shapes.
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
    ho = max(1, out_len(h, kh, sh, dh))
    wo = max(1, out_len(w, kw, sw, dw))
    taps = kh * kw
    fft_points = _next_fast_len(h) * _next_fast_len(w)
    fft_unit = fft_points * math.log2(max(fft_points, 2)) * _NS_PER_FFT_POINT_LOG
    if len(x_shape) == 2:
        if exact or sh != 1 or sw != 1 or taps <= 9:
            return "direct"
        direct_cost = _NS_PER_TAP_PIXEL * taps * ho * wo
        total, single = _fft2d_points(h, w, kh, kw, ho, wo)
        fft_cost = _NS_PER_FFT2D_POINT_LOG * total * math.log2(max(single, 2))
        return "fft" if fft_cost < direct_cost else "direct"
    n, c = x_shape[:2]
    c_out, c_per_group = weight_shape[:2]
    single = dtype is not None and np.dtype(dtype) == np.float32
    gemm_ns = _NS_PER_GEMM_MAC * (0.5 if single else 1.0)
    gemm_cost = (gemm_ns * c_out * c_per_group + _NS_PER_COL_COPY * c) * n * taps * ho * (wo + kw - 1)
    # depthwise (one input channel per group): Winograd's products are element-wise, 1x1
    # "GEMMs" per group, and it gains nothing over im2col there (0.96-1.06 of im2col's
    # time on the depthwise layers of bench/bench_conv.py --only choice)
    if (sh, sw, dh, dw) == (1, 1, 1, 1) and (kh, kw) == (3, 3) and not exact and c_per_group > 1:
        itemsize = 4 if dtype is None else np.dtype(dtype).itemsize
        wino_cost = _winograd_cost(n, c, c_out, c_per_group, ho, wo, gemm_ns, itemsize)
        return "winograd" if wino_cost < gemm_cost + _NS_IM2COL_CALL else "im2col"
    if (
        not exact
        and c_per_group > 1
        and winograd_kernels.available()
        and winograd_strided.supports((kh, kw), (sh, sw), (dh, dw))
        and winograd_strided.MULTIPLICATIONS_PER_OUTPUT * sh * sw <= _STRIDED_WINOGRAD_MAC_RATIO * taps
        and n * -(-ho // 4) * -(-wo // 4) >= _STRIDED_WINOGRAD_MIN_TILES
    ):
        return "winograd"
    if (sh, sw, dh, dw) != (1, 1, 1, 1) or taps <= 9:
        return "im2col"
    fft_cost = (n * c + n * c_out + c_out * c_per_group) * fft_unit + _NS_PER_SPECTRAL_MAC * n * c_out * (
        c_per_group * fft_points / 2
    )
    return "fft" if fft_cost < gemm_cost else "im2col"


def _resolve_method(method: Any, x_shape, weight_shape, stride, dilation, dtype=None) -> str:
    check_choice("method", method, ("auto",) + METHODS)
    if method == "auto":
        return choose_method(x_shape, weight_shape, stride, dilation, dtype)
    return method


def resolve_layer_method(method: Any, x_shape, weight_shape, stride, dilation, dtype=None) -> str:
    """``method`` of an NCHW layer checked against :data:`LAYER_METHODS`; ``"auto"``
    resolved by :func:`choose_method`."""
    check_choice("method", method, ("auto",) + LAYER_METHODS)
    if method == "auto":
        return choose_method(x_shape, weight_shape, stride, dilation, dtype)
    return method


# ----------------------------------------------------------------------------------
# forward: valid cross-correlation of an already padded batch
# ----------------------------------------------------------------------------------
def corr_nchw(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    method: str,
    pads: Pads = ((0, 0), (0, 0)),
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Cross-correlation of ``x (N, C, H, W)``, zero-padded by ``pads``, with
    ``w (O, C/g, kH, kW)``, plus ``bias (O,)`` if given (same dtype as the result).

    Inputs are validated by the caller; returns ``(N, O, H_out, W_out)`` in the
    common floating dtype.
    """
    dtype = result_dtype(x, w)
    x = x.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    if method == "im2col":
        return corr_flat(x, pads, w, stride, dilation, groups, bias)
    xp = pad_hw(x, pads)
    if method == "direct":
        out = _corr_direct(xp, w, stride, dilation, groups)
    else:
        out = _corr_fft(xp, w, stride, dilation, groups)
    if bias is not None:
        out += bias[:, None, None]
    return out


def _corr_direct(xp, w, stride, dilation, groups):
    n, c, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    ho, wo = out_len(hp, kh, stride[0], dilation[0]), out_len(wp, kw, stride[1], dilation[1])
    if n == c == o == 1:  # single-channel 2-D image: shifted multiply-adds
        if stride == (1, 1):
            return _corr2d_direct(xp[0, 0], w[0, 0], dilation)[None, None]
        out = np.empty((ho, wo), dtype=xp.dtype)
        _corr2d_taps(xp[0, 0], w[0, 0], out, stride, dilation)
        return out.reshape(1, 1, ho, wo)
    out = np.zeros((n, groups, o // groups, ho * wo), dtype=xp.dtype)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    for i in range(kh):
        rs = tap_slice(i * dilation[0], ho, stride[0])
        for j in range(kw):
            cs = tap_slice(j * dilation[1], wo, stride[1])
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
                src = img[tap_slice(i * dh + sh * y0, r, sh), tap_slice(j * dw, wo, sw)]
                if m == 0:
                    np.multiply(src, kv, out=o)
                else:
                    np.multiply(src, kv, out=t)
                    o += t

    run_parallel(work, ho, min_per_worker=max(band, 64))


# ----------------------------------------------------------------------------------
# single-channel 2-D images (correlate2d / convolve2d)
# ----------------------------------------------------------------------------------
# Largest band handed to one BLAS axpy call: OpenBLAS runs axpy single-threaded up to
# 10000 elements, and ~64 KiB bands stay in the L2 cache (our own threads split bands).
_AXPY_BAND = 8192
_axpy_cache: dict[str, Any] = {}


def _axpy(dtype: np.dtype):
    """BLAS ``y += a * x`` (in place) for float32/float64, or None if unavailable."""
    key = np.dtype(dtype).char
    if key not in _axpy_cache:
        fn = None
        try:
            from scipy.linalg import blas

            cand = {"d": blas.daxpy, "f": blas.saxpy}.get(key)
            if cand is not None:  # make sure the wrapper updates y in place (no copy)
                y = np.zeros(4, dtype=dtype)
                cand(np.ones(3, dtype=dtype), y[1:], a=2.0)
                fn = cand if np.array_equal(y, [0, 2, 2, 2]) else None
        except Exception:  # pragma: no cover - SciPy without BLAS wrappers
            fn = None
        _axpy_cache[key] = fn
    return _axpy_cache[key]


def _corr2d_direct(xp: np.ndarray, k: np.ndarray, dilation=(1, 1)) -> np.ndarray:
    """Valid correlation of the padded 2-D image ``xp`` with ``k`` at stride 1.

    On the flat image (row length Wp), tap ``(i, j)`` of every output in a band of
    rows is one contiguous slice starting ``i*dh*Wp + j*dw`` further on, so each tap
    is ONE in-place BLAS axpy (``band += k[i, j] * slice``) over a cache-resident
    band; the Wp - Wo garbage columns per row are cropped when the band is stored.
    Bands are shared out over the CPU cores (BLAS releases the GIL)."""
    xp = np.ascontiguousarray(xp)
    hp, wp = xp.shape
    kh, kw = k.shape
    dh, dw = dilation
    ho, wo = out_len(hp, kh, 1, dh), out_len(wp, kw, 1, dw)
    flat = xp.reshape(-1)
    taps = [(i * dh * wp + j * dw, float(k[i, j])) for i in range(kh) for j in range(kw)]
    axpy = _axpy(xp.dtype) if wp <= _AXPY_BAND else None
    rows = max(1, _AXPY_BAND // wp) if axpy is not None else max(1, (256 * 1024) // (wp * xp.itemsize))
    out = np.empty((ho, wo), dtype=xp.dtype)
    nbands = -(-ho // rows)

    def work(b0: int, b1: int) -> None:
        buf = np.empty(rows * wp, dtype=xp.dtype)
        tmp = None if axpy is not None else np.empty(rows * wp, dtype=xp.dtype)
        for y0 in range(b0 * rows, min(ho, b1 * rows), rows):
            r = min(rows, ho - y0)
            # the last row of the image needs only wo columns (nothing is read past the end)
            p0, n = y0 * wp, (r - 1) * wp + wo
            band = buf[:n]
            off, kv = taps[0]
            np.multiply(flat[p0 + off : p0 + off + n], kv, out=band)
            for off, kv in taps[1:]:
                src = flat[p0 + off : p0 + off + n]
                if axpy is not None:
                    axpy(src, band, a=kv)
                else:
                    np.multiply(src, kv, out=tmp[:n])
                    band += tmp[:n]
            out[y0 : y0 + r] = buf[: r * wp].reshape(r, wp)[:, :wo]

    run_parallel(work, nbands, min_per_worker=2, tasks_per_worker=4)
    return out


def _corr2d_fft(image: np.ndarray, k: np.ndarray, pads: Pads) -> np.ndarray:
    """Valid correlation of ``image`` zero-padded by ``pads`` with ``k``, by FFT.

    Like ``scipy.signal.fftconvolve``: convolution with the flipped kernel via
    ``rfft2`` at fast lengths, but only as long as the wanted part of the "full"
    result needs (no circular wrap reaches it), and without padding copies. Tall
    images are cut into bands of rows (overlap-save): each band's transform is only
    a few MiB (cache friendly) and the bands run on all cores."""
    h, w = image.shape
    kh, kw = k.shape
    (pt, pb), (pl, pr) = pads
    ho, wo = h + pt + pb - kh + 1, w + pl + pr - kw + 1
    a, c = kh - 1 - pt, kw - 1 - pl  # index of output (0, 0) in the "full" result
    kflip = k[::-1, ::-1]
    fw = _next_fast_len(max(c + wo, w + kw - 1 - c))
    fb = _next_fast_len(max(_FFT_BAND_ROWS, 4 * (kh - 1)))
    band = fb - kh + 1  # output rows per band
    if _fft2d_whole(ho, wo, band):  # one transform of the whole image
        fh = _next_fast_len(max(a + ho, h + kh - 1 - a))
        workers = -1 if fh * fw >= _FFT_THREADS_MIN else 1  # threads cost ~0.1 ms a call
        spec = _fft().rfft2(image, (fh, fw), workers=workers)
        spec *= _fft().rfft2(kflip, (fh, fw), workers=workers)
        full = _fft().irfft2(spec, (fh, fw), workers=workers)
        return np.ascontiguousarray(full[a : a + ho, c : c + wo])
    kspec = _fft().rfft2(kflip, (fb, fw))
    out = np.empty((ho, wo), dtype=image.dtype)

    def work(b0: int, b1: int) -> None:
        for y0 in range(b0 * band, min(ho, b1 * band), band):
            y1 = min(ho, y0 + band)
            r0, r1 = y0 - pt, y1 - pt + kh - 1  # image rows these outputs read
            s0, s1 = max(0, r0), min(h, r1)
            if (s0, s1) == (r0, r1):
                src = image[r0:r1]
            else:  # top/bottom padding rows
                src = np.zeros((r1 - r0, w), dtype=image.dtype)
                src[s0 - r0 : s1 - r0] = image[s0:s1]
            spec = _fft().rfft2(src, (fb, fw))
            spec *= kspec
            full = _fft().irfft2(spec, (fb, fw))
            out[y0:y1] = full[kh - 1 : kh - 1 + y1 - y0, c : c + wo]

    run_parallel(work, -(-ho // band), min_per_worker=1, tasks_per_worker=2)
    return out


def corr2d(image: np.ndarray, k: np.ndarray, pads: Pads, method: str) -> np.ndarray:
    """Valid correlation of the 2-D ``image`` zero-padded by ``pads`` with ``k``
    (both float32 or both float64; validated by the caller)."""
    if method == "fft":
        return _corr2d_fft(image, k, pads)
    if method == "direct":
        return _corr2d_direct(pad_hw(image, pads), k)
    return corr_flat(image[None, None], pads, k[None, None], (1, 1), (1, 1), 1)[0, 0]


def _fft_shape(hp: int, wp: int) -> tuple[int, int]:
    # circular correlation of length >= Hp leaves the valid part unaliased
    return _next_fast_len(hp), _next_fast_len(wp)


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
    ho, wo = out_len(hp, kh, stride[0], dilation[0]), out_len(wp, kw, stride[1], dilation[1])
    fshape = _fft_shape(hp, wp)
    spec_bytes = 2 * xp.itemsize * fshape[0] * (fshape[1] // 2 + 1)  # one complex spectrum
    half = max(1, get_memory_budget() // 2)
    ob = int(np.clip(half // (cg * spec_bytes), 1, og))  # weight spectra: <= budget / 2
    nb = int(np.clip(half // ((cg + 2 * ob) * spec_bytes), 1, max(n, 1)))
    out = np.empty((n, o, ho, wo), dtype=xp.dtype)
    for gi in range(groups):
        xg = xp[:, gi * cg : (gi + 1) * cg]
        for o0 in range(gi * og, (gi + 1) * og, ob):
            o1 = min(o0 + ob, (gi + 1) * og)
            wd = _dilate_kernel(w[o0:o1], dilation)
            spec_w = _fft().rfft2(wd[..., ::-1, ::-1], fshape, workers=-1)  # (ob, cg, F...)
            for n0 in range(0, n, nb):
                n1 = min(n, n0 + nb)
                spec_x = _fft().rfft2(xg[n0:n1], fshape, workers=-1)  # (nb, cg, F...)
                prod = spec_x[:, None, 0] * spec_w[None, :, 0]
                for ci in range(1, cg):
                    prod += spec_x[:, None, ci] * spec_w[None, :, ci]
                full = _fft().irfft2(prod, fshape, workers=-1)
                valid = full[..., eh - 1 : eh - 1 + ho1, ew - 1 : ew - 1 + wo1]
                out[n0:n1, o0:o1] = valid[..., :: stride[0], :: stride[1]]
    return out


# ----------------------------------------------------------------------------------
# backward pieces
# ----------------------------------------------------------------------------------
def grad_input(
    g: np.ndarray,
    w: np.ndarray,
    x_hw: tuple[int, int],
    pads: Pads,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    method: str,
) -> np.ndarray:
    """Gradient of the padded correlation w.r.t. its *unpadded* input ``(N, C, H, W)``
    (``x_hw = (H, W)``, ``pads`` as in the forward pass); also the transposed
    convolution. ``"im2col"`` at stride 1 runs the forward flat GEMM on ``grad_out``
    ("full" correlation with the flipped kernel); strided layers and ``"direct"``
    scatter ``W^T @ grad_out`` back onto the input (:func:`grad_input_nchw`)."""
    dtype = result_dtype(g, w)
    g = g.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    (pt, pb), (pl, pr) = pads
    hp, wp = x_hw[0] + pt + pb, x_hw[1] + pl + pr
    eh, ew = dilation[0] * (w.shape[2] - 1), dilation[1] * (w.shape[3] - 1)
    every_row_read = g.shape[2] + eh == hp and g.shape[3] + ew == wp
    if method != "direct" and stride == (1, 1) and every_row_read:
        return grad_input_flat(g, w, x_hw, pads, dilation, groups)
    if method != "direct":
        x_shape = (g.shape[0], w.shape[1] * groups, *x_hw)
        return grad_input_flat_strided(g, w, x_shape, pads, stride, dilation, groups)
    xp_shape = (g.shape[0], w.shape[1] * groups, hp, wp)
    # BLAS on the calling thread: a woken OpenBLAS worker keeps spinning for a while
    # after the call and would take a core from the chunks that conv_lib's threads run next
    with single_threaded_blas():
        gxp = grad_input_nchw(g, w, xp_shape, stride, dilation, groups, method)
    return np.ascontiguousarray(gxp[:, :, pt : pt + x_hw[0], pl : pl + x_hw[1]])


def grad_weight_bias(
    g: np.ndarray,
    x: np.ndarray,
    pads: Pads,
    w_shape: tuple[int, int, int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the correlation of ``x`` (unpadded, zero-padded by ``pads``) w.r.t.
    the weight, ``(O, C/g, kH, kW)``, and the bias, ``(O,)`` (``g`` summed over batch and
    space). ``"im2col"``/``"fft"``: flat GEMM per chunk, which also sums the chunk of
    ``g`` while it is in the cache (:func:`conv_lib.im2col_gemm.grad_weight_flat`);
    ``"direct"``: one product per tap."""
    dtype = result_dtype(g, x)
    g, x = g.astype(dtype, copy=False), x.astype(dtype, copy=False)
    if method == "direct":
        gw = grad_weight_nchw(g, pad_hw(x, pads), w_shape, stride, dilation, groups, method)
        return gw, g.sum(axis=(0, 2, 3))
    return grad_weight_flat(g, x, pads, w_shape, stride, dilation, groups)


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
    dtype = result_dtype(g, w)
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
            rs = tap_slice(i * dilation[0], ho, stride[0])
            for j in range(kw):
                cs = tap_slice(j * dilation[1], wo, stride[1])
                wt = np.ascontiguousarray(wg[:, :, :, i, j].transpose(0, 2, 1))  # (g, cg, og)
                gxp[:, :, rs, cs] += (wt @ gg).reshape(n, c, ho, wo)
        return gxp
    wt = np.ascontiguousarray(wg.reshape(groups, og, cg * kh * kw).transpose(0, 2, 1))  # (g, K, og)
    bytes_per_row = c * kh * kw * wo * dtype.itemsize
    for n0, n1, y0, y1 in row_chunks(n, ho, bytes_per_row, _cols_limit()):
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
    dtype = result_dtype(g, xp)
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
            rs = tap_slice(i * dilation[0], ho, stride[0])
            for j in range(kw):
                cs = tap_slice(j * dilation[1], wo, stride[1])
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
    for n0, n1, y0, y1 in row_chunks(n, ho, bytes_per_row, _cols_limit()):
        nb, r = n1 - n0, y1 - y0
        cols = np.empty((nb, c, kh, kw, r, wo), dtype=dtype)
        _fill_cols(cols, xp[n0:n1], (y0, y1), (kh, kw), stride, dilation, wo)
        cols = cols.reshape(nb, groups, kk, r * wo)
        gc = g[n0:n1, :, y0:y1].reshape(nb, groups, og, r * wo)
        for b in range(nb):
            for gi in range(groups):  # 2-D products: BLAS reads the transposed view directly
                gw[gi] += gc[b, gi] @ cols[b, gi].T
    return gw.reshape(w_shape)
