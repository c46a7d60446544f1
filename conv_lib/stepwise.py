"""Convolution one window at a time: the one-page summary's five steps written as plain Python loops.

1. Place the filter over a region of the input.
2. Multiply the filter and the region element by element.
3. Sum the products to get one output pixel.
4. Slide the filter by the stride and repeat.
5. The output pixels together form the feature map.

This is the course's *teaching reference*: slow on purpose, and easy to read. The fast
versions are :func:`conv_lib.correlate2d` / :func:`conv_lib.conv2d`. The tests check this
one against ``scipy.signal`` (exactly, on integers) and ``torch.nn.functional.conv2d``.

:func:`walk_windows` exposes every window as a :class:`WindowStep` record so chapters can
draw and animate the computation without re-implementing it::

    for step in walk_windows(image, kernel, stride=2):
        draw(step.top, step.left, step.window, step.products, step.value)

Conventions: images and kernels are 2-D, ``(H, W)`` and ``(kH, kW)``; integer and bool
input is computed in float64 (exactly, for integers below 2**53), float32 stays float32.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from conv_lib.validation import as_array, as_pair, check_choice

__all__ = [
    "ConvolutionWalk",
    "WindowStep",
    "convolve2d_loops",
    "correlate2d_loops",
    "walk_windows",
    "zero_pad",
]

PADDING_MODES = ("valid", "same", "full")


def zero_pad(image: Any, padding: int | tuple[int, int]) -> np.ndarray:
    """Surround an image with zeros: ``padding`` rows above and below, columns left and right.

    Parameters
    ----------
    image : array_like, shape (..., H, W)
        2-D image, or a stack of them (only the last two axes are padded).
    padding : int or (int, int)
        ``p`` or ``(pH, pW)``, each ``>= 0``.

    Returns
    -------
    numpy.ndarray, shape (..., H + 2*pH, W + 2*pW)
        A new array with the dtype of ``image`` (padding computes nothing, so integers
        stay integers).
    """
    arr = as_array("image", image)
    if arr.ndim < 2:
        raise ValueError(
            f"image: got {arr.ndim}-D input of shape {arr.shape}; expected at least 2 dimensions"
        )
    pad_h, pad_w = as_pair("padding", padding, minimum=0)
    widths = [(0, 0)] * (arr.ndim - 2) + [(pad_h, pad_h), (pad_w, pad_w)]
    return np.pad(arr, widths, mode="constant", constant_values=0)


@dataclass(frozen=True)
class _Setup:
    """Everything the loops need, checked once."""

    padded_image: np.ndarray
    kernel: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    output_shape: tuple[int, int]


def _as_image(name: str, value: Any) -> np.ndarray:
    arr = as_array(name, value, ndim=2, floating=True)
    if arr.size == 0:
        raise ValueError(
            f"{name}: got an empty array of shape {arr.shape}; expected at least one row and one column"
        )
    return arr


def _resolve_padding(
    padding: Any, kernel_shape: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    extents = tuple(d * (k - 1) + 1 for k, d in zip(kernel_shape, dilation, strict=True))
    if not isinstance(padding, str):
        return as_pair("padding", padding, minimum=0)
    check_choice("padding", padding, PADDING_MODES)
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return extents[0] - 1, extents[1] - 1
    if stride != (1, 1):
        raise ValueError(f"padding: got 'same' with stride {stride}; 'same' needs stride 1")
    if extents[0] % 2 == 0 or extents[1] % 2 == 0:
        raise ValueError(
            f"padding: got 'same' with a kernel spanning {extents} pixels; 'same' needs an odd span "
            "(pad by hand, e.g. with zero_pad, for even kernels)"
        )
    return (extents[0] - 1) // 2, (extents[1] - 1) // 2


def _prepare(image: Any, kernel: Any, stride: Any, padding: Any, dilation: Any, flip: bool) -> _Setup:
    image = _as_image("image", image)
    kernel = _as_image("kernel", kernel)
    stride = as_pair("stride", stride)
    dilation = as_pair("dilation", dilation)
    padding = _resolve_padding(padding, kernel.shape, stride, dilation)
    dtype = np.result_type(image, kernel)
    padded = zero_pad(image.astype(dtype, copy=False), padding)
    extents = tuple(d * (k - 1) + 1 for k, d in zip(kernel.shape, dilation, strict=True))
    if extents[0] > padded.shape[0] or extents[1] > padded.shape[1]:
        dilated = f" (spanning {extents} with dilation {dilation})" if dilation != (1, 1) else ""
        raise ValueError(
            f"kernel: got shape {kernel.shape}{dilated}; expected at most the padded image shape "
            f"{padded.shape} (image {image.shape}, padding {padding})"
        )
    output_shape = (
        (padded.shape[0] - extents[0]) // stride[0] + 1,
        (padded.shape[1] - extents[1]) // stride[1] + 1,
    )
    applied = kernel[::-1, ::-1] if flip else kernel
    applied = np.array(applied, dtype=dtype)  # a copy: callers may change theirs later
    padded.setflags(write=False)
    applied.setflags(write=False)
    return _Setup(padded, applied, stride, padding, dilation, output_shape)


def _slide(setup: _Setup) -> np.ndarray:
    """The five steps, one output pixel at a time."""
    padded, kernel = setup.padded_image, setup.kernel
    kernel_h, kernel_w = kernel.shape
    stride_h, stride_w = setup.stride
    dilation_h, dilation_w = setup.dilation
    out_h, out_w = setup.output_shape
    feature_map = np.zeros((out_h, out_w), dtype=kernel.dtype)
    # Step 4: slide the filter by the stride, row by row, and repeat steps 1-3 at each place.
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride_h, j * stride_w
            # Step 1: place the filter over a region of the input. With dilation d the
            # filter's taps sit d pixels apart, so the region takes every d-th pixel.
            window = padded[
                top : top + (kernel_h - 1) * dilation_h + 1 : dilation_h,
                left : left + (kernel_w - 1) * dilation_w + 1 : dilation_w,
            ]
            # Step 2: element-wise multiplication between filter and input values.
            products = window * kernel
            # Step 3: sum the results to produce one output pixel.
            feature_map[i, j] = products.sum()
    # Step 5: the output pixels together are the feature map.
    return feature_map


def correlate2d_loops(
    image: Any,
    kernel: Any,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Cross-correlation (what deep-learning libraries call "convolution"), with loops.

    ``out[i, j] = sum_{a, b} padded[i*sH + a*dH, j*sW + b*dW] * kernel[a, b]``:
    the kernel is used as it is, not flipped.

    Parameters
    ----------
    image : array_like, shape (H, W)
    kernel : array_like, shape (kH, kW)
    stride : int or (int, int)
        Step between windows, ``>= 1``.
    padding : int, (int, int) or str
        Zeros added on each side (``>= 0``), or ``"valid"`` (no padding, the default 0),
        ``"full"`` (every overlap: ``d*(k-1)`` zeros, as ``scipy.signal.correlate2d``
        ``mode="full"``), ``"same"`` (output as large as the image; needs stride 1 and an
        odd kernel span).
    dilation : int or (int, int)
        Spacing between kernel taps, ``>= 1``.

    Returns
    -------
    feature_map : numpy.ndarray, shape (H_out, W_out)
        ``H_out = output_size(H, kH, sH, pH, dH)`` (see :func:`conv_lib.output_size`),
        likewise ``W_out``. float64 for integer input, float32 if both inputs are float32.
        With ``padding=0`` (or ``"valid"`` / ``"full"``) and stride / dilation 1 it equals
        ``scipy.signal.correlate2d(image, kernel, mode=...)``, exactly for integer input.

    Raises
    ------
    ValueError
        If the (dilated) kernel is larger than the padded image, or for a bad argument.
    """
    return _slide(_prepare(image, kernel, stride, padding, dilation, flip=False))


def convolve2d_loops(
    image: Any,
    kernel: Any,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Convolution in the mathematical sense (kernel flipped), with loops.

    The one-page summary's formula ``S(i, j) = sum_m sum_n I(m, n) K(i - m, j - n)`` pairs image pixel
    ``m`` with kernel entry ``i - m``: walking forward through the image walks backward
    through the kernel. That is a cross-correlation with the kernel turned by 180 degrees,
    which is how it is computed here: ``kernel[::-1, ::-1]``, then the same five steps as
    :func:`correlate2d_loops`.

    Parameters
    ----------
    image : array_like, shape (H, W)
    kernel : array_like, shape (kH, kW)
    stride, padding, dilation
        As for :func:`correlate2d_loops`.

    Returns
    -------
    feature_map : numpy.ndarray, shape (H_out, W_out)
        With padding ``0`` / ``"valid"`` / ``"full"`` and stride / dilation 1 it equals
        ``scipy.signal.convolve2d(image, kernel, mode=...)``, exactly for integer input
        (e.g. the one-page summary's example).
    """
    return _slide(_prepare(image, kernel, stride, padding, dilation, flip=True))


@dataclass(frozen=True, eq=False)
class WindowStep:
    """One output pixel's computation: steps 1 to 3 at one place of the filter.

    All arrays are read-only.

    Attributes
    ----------
    step : int
        0-based counter, in the order the filter visits the image (row by row).
    index : (int, int)
        Output position ``(i, j)`` this step computes.
    top, left : int
        Row and column of the window's top-left pixel in the *padded* image
        (``top = i * stride_h``, ``left = j * stride_w``).
    rows, cols : numpy.ndarray of int, shapes (kH,) and (kW,)
        Rows and columns of the padded image the window covers (``top + dH * arange(kH)``;
        with dilation they are not contiguous). ``padded[np.ix_(rows, cols)] == window``.
    window : numpy.ndarray, shape (kH, kW)
        The input values under the filter (step 1).
    kernel : numpy.ndarray, shape (kH, kW)
        The kernel as applied (already flipped for a convolution).
    products : numpy.ndarray, shape (kH, kW)
        ``window * kernel`` (step 2).
    value : float
        ``products.sum()``, the output pixel (step 3).
    """

    step: int
    index: tuple[int, int]
    top: int
    left: int
    rows: np.ndarray
    cols: np.ndarray
    window: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    value: float

    def explain(self) -> str:
        """The sum of step 3 written out, e.g. ``out[0, 0] = 1*1 + 2*0 + ... = -6``."""
        terms = " + ".join(
            f"{_fmt(w)}*{_fmt(k)}" for w, k in zip(self.window.ravel(), self.kernel.ravel(), strict=True)
        )
        i, j = self.index
        return f"out[{i}, {j}] = {terms} = {_fmt(self.value)}"

    def __repr__(self) -> str:
        i, j = self.index
        return (
            f"WindowStep(step={self.step}, index=({i}, {j}), top={self.top}, left={self.left}, "
            f"window_shape={self.window.shape}, value={_fmt(self.value)})"
        )


def _fmt(x: Any) -> str:
    """A number without a useless '.0'; negative numbers in parentheses."""
    x = float(x)
    text = str(int(x)) if x.is_integer() and abs(x) < 2**53 else f"{x:.4g}"
    return f"({text})" if x < 0 else text


class ConvolutionWalk(Sequence[WindowStep]):
    """All the windows of one convolution, in order; what :func:`walk_windows` returns.

    Iterate over it (``for step in walk``), index it (``walk[0]``, ``walk[-1]``), or ask
    ``len(walk)``. Each pass computes the steps afresh, so it can be iterated many times.

    Attributes
    ----------
    padded_image : numpy.ndarray, shape (H + 2*pH, W + 2*pW)
        The zero-padded image the windows are taken from (read-only).
    kernel : numpy.ndarray, shape (kH, kW)
        The kernel as applied (flipped if ``flip``; read-only).
    stride, padding, dilation : (int, int)
        The resolved arguments (``"same"`` / ``"full"`` padding turned into numbers).
    flip : bool
        True for a convolution, False for a cross-correlation.
    output_shape : (int, int)
        ``(H_out, W_out)``, the feature map's shape.
    """

    def __init__(self, setup: _Setup, flip: bool) -> None:
        self._setup = setup
        self.padded_image: np.ndarray = setup.padded_image
        self.kernel: np.ndarray = setup.kernel
        self.stride: tuple[int, int] = setup.stride
        self.padding: tuple[int, int] = setup.padding
        self.dilation: tuple[int, int] = setup.dilation
        self.flip: bool = flip
        self.output_shape: tuple[int, int] = setup.output_shape

    def __len__(self) -> int:
        return self.output_shape[0] * self.output_shape[1]

    def _step(self, step: int) -> WindowStep:
        i, j = divmod(step, self.output_shape[1])
        top, left = i * self.stride[0], j * self.stride[1]
        rows = top + self.dilation[0] * np.arange(self.kernel.shape[0])
        cols = left + self.dilation[1] * np.arange(self.kernel.shape[1])
        window = self.padded_image[np.ix_(rows, cols)]
        products = window * self.kernel
        for arr in (rows, cols, window, products):
            arr.setflags(write=False)
        return WindowStep(
            step=step,
            index=(i, j),
            top=top,
            left=left,
            rows=rows,
            cols=cols,
            window=window,
            kernel=self.kernel,
            products=products,
            value=float(products.sum()),
        )

    @overload
    def __getitem__(self, key: int) -> WindowStep: ...

    @overload
    def __getitem__(self, key: slice) -> list[WindowStep]: ...

    def __getitem__(self, key: int | slice) -> WindowStep | list[WindowStep]:
        if isinstance(key, slice):
            return [self._step(k) for k in range(*key.indices(len(self)))]
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"step: got {key!r}; expected an integer or a slice")
        count = len(self)
        if not -count <= key < count:
            raise IndexError(f"step: got {key}; expected -{count} <= step < {count} ({count} windows)")
        return self._step(int(key) % count)

    def __iter__(self) -> Iterator[WindowStep]:
        for step in range(len(self)):
            yield self._step(step)

    def feature_map(self) -> np.ndarray:
        """The finished feature map (step 5), shape ``output_shape``; same as the loops functions."""
        return _slide(self._setup)

    def __repr__(self) -> str:
        kind = "convolution" if self.flip else "cross-correlation"
        return (
            f"ConvolutionWalk({kind}, padded_image {self.padded_image.shape}, kernel {self.kernel.shape}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"output_shape={self.output_shape}, {len(self)} windows)"
        )


def walk_windows(
    image: Any,
    kernel: Any,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    flip: bool = False,
) -> ConvolutionWalk:
    """Every window of a cross-correlation (or, with ``flip=True``, a convolution), in order.

    Arguments are checked at once (not lazily at the first step). Typical use::

        walk = walk_windows(image, kernel, padding=1)
        feature_map = np.full(walk.output_shape, np.nan)
        for step in walk:
            feature_map[step.index] = step.value
            draw(walk.padded_image, step.top, step.left, step.window, step.products, feature_map)

    Parameters
    ----------
    image : array_like, shape (H, W)
    kernel : array_like, shape (kH, kW)
    stride, padding, dilation
        As for :func:`correlate2d_loops`.
    flip : bool
        Flip the kernel (a convolution, like :func:`convolve2d_loops`).

    Returns
    -------
    ConvolutionWalk
        A sequence of :class:`WindowStep`, one per output pixel, row by row; it also
        carries ``padded_image``, ``kernel`` (as applied), ``output_shape`` and the
        resolved ``stride``, ``padding``, ``dilation``.
    """
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"flip: got {flip!r}; expected True or False")
    return ConvolutionWalk(_prepare(image, kernel, stride, padding, dilation, flip=bool(flip)), bool(flip))
