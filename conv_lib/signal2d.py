"""2-D correlation and convolution of one image, with ``scipy.signal`` semantics.

``correlate2d(image, kernel, mode)`` and ``convolve2d(image, kernel, mode)`` give the
same values as ``scipy.signal.correlate2d`` / ``scipy.signal.convolve2d`` with the
default zero fill, for ``mode`` in ``"valid"``, ``"same"``, ``"full"``:

* ``convolve2d`` is the one-page summary's formula ``S(i, j) = sum_m sum_n I(m, n) K(i - m, j - n)``,
  i.e. ``correlate2d`` with the kernel flipped in both axes.
* ``"same"`` returns the image's shape, centred on the ``"full"`` result exactly as scipy
  does; for an even kernel size ``k`` the extra zero row/column goes *after* the image
  for ``correlate2d`` (``(k-1)//2`` zeros before, ``k//2`` after, like
  ``torch.nn.functional.conv2d(padding="same")``) and *before* it for ``convolve2d``.

Two documented differences from scipy:

* **Kernel larger than the image in "valid" mode** raises ``ValueError`` (scipy
  silently swaps the two arguments when the kernel is larger in every dimension, and
  raises otherwise).
* **Dtype.** Integer and bool inputs give a ``float64`` result (scipy keeps the integer
  dtype, and can overflow). With methods ``"direct"`` and ``"im2col"`` (and ``"auto"``,
  which never picks FFT for integers) the values are exact integers as long as every
  partial sum stays below ``2**53``, so ``np.array_equal`` with scipy's answer holds.
  ``"fft"`` is accurate to rounding only. ``float32`` input (both arguments) stays
  ``float32``; otherwise the result is ``float64``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conv_lib.algorithms import _resolve_method, corr2d
from conv_lib.validation import as_array, check_choice

__all__ = ["convolve2d", "correlate2d"]

MODES: tuple[str, ...] = ("valid", "same", "full")


def _check_inputs(image: Any, kernel: Any, mode: Any) -> tuple[np.ndarray, np.ndarray, str]:
    image = as_array("image", image, ndim=2)
    kernel = as_array("kernel", kernel, ndim=2)
    mode = check_choice("mode", mode, MODES)
    if image.size == 0:
        raise ValueError(f"image: got shape {image.shape}; expected a non-empty 2-D array")
    if kernel.size == 0:
        raise ValueError(f"kernel: got shape {kernel.shape}; expected a non-empty 2-D array")
    if mode == "valid" and (kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]):
        raise ValueError(
            f"kernel: got shape {kernel.shape}, larger than the image of shape {image.shape}; "
            "expected a kernel no larger than the image in 'valid' mode (scipy would swap "
            "the arguments; conv_lib refuses: use mode='full' or 'same')"
        )
    return image, kernel, mode


def _pads(kernel_shape: tuple[int, int], mode: str, flipped: bool) -> tuple[tuple[int, int], ...]:
    """Zero padding ``((top, bottom), (left, right))`` that turns ``mode`` into "valid"."""
    pads = []
    for k in kernel_shape:
        if mode == "valid":
            pads.append((0, 0))
        elif mode == "full":
            pads.append((k - 1, k - 1))
        elif flipped:  # convolve2d "same": scipy crops full[(k-1)//2 :]
            pads.append((k // 2, (k - 1) // 2))
        else:  # correlate2d "same": scipy crops full[k//2 :]
            pads.append(((k - 1) // 2, k // 2))
    return tuple(pads)


def _correlate(image: np.ndarray, kernel: np.ndarray, mode: str, method: Any, flipped: bool) -> np.ndarray:
    method = _resolve_method(method, image.shape, kernel.shape, 1, 1, np.result_type(image, kernel))
    work = np.float32 if image.dtype == kernel.dtype == np.float32 else np.float64
    image = image.astype(work, copy=False)
    kernel = kernel.astype(work, copy=False)
    if flipped:
        kernel = kernel[::-1, ::-1]
    return corr2d(image, kernel, _pads(kernel.shape, mode, flipped), method)


def correlate2d(image: Any, kernel: Any, mode: str = "valid", method: str = "auto") -> np.ndarray:
    """Cross-correlate a 2-D image with a 2-D kernel (``scipy.signal.correlate2d``).

    ``out[i, j] = sum_{m, n} image_padded[i + m, j + n] * kernel[m, n]`` -- the kernel is
    slid over the image without flipping, as in a CNN layer.

    Parameters
    ----------
    image : array_like, shape (H, W)
    kernel : array_like, shape (kH, kW)
        In ``"valid"`` mode it must fit inside the image (``kH <= H``, ``kW <= W``).
    mode : {"valid", "same", "full"}
        ``"valid"``: only positions where the kernel lies inside the image,
        shape ``(H - kH + 1, W - kW + 1)``; ``"same"``: shape ``(H, W)``;
        ``"full"``: every overlap, shape ``(H + kH - 1, W + kW - 1)``. Zero fill.
    method : {"auto", "direct", "im2col", "fft"}
        Algorithm (see :mod:`conv_lib.algorithms`); ``"auto"`` uses
        :func:`~conv_lib.algorithms.choose_method`.

    Returns
    -------
    ndarray
        ``float32`` if both inputs are ``float32``, else ``float64`` (exact integers for
        integer inputs with ``"direct"``/``"im2col"``/``"auto"``).

    Raises
    ------
    ValueError
        Wrong number of dimensions, empty input, unknown ``mode``/``method``, or a kernel
        larger than the image in ``"valid"`` mode.
    TypeError
        Non-numeric or complex input.
    """
    image, kernel, mode = _check_inputs(image, kernel, mode)
    return _correlate(image, kernel, mode, method, flipped=False)


def convolve2d(image: Any, kernel: Any, mode: str = "valid", method: str = "auto") -> np.ndarray:
    """Convolve a 2-D image with a 2-D kernel (``scipy.signal.convolve2d``).

    The one-page summary's definition ``S(i, j) = sum_m sum_n I(m, n) K(i - m, j - n)``: the same
    as :func:`correlate2d` with ``kernel[::-1, ::-1]``.

    Parameters
    ----------
    image : array_like, shape (H, W)
    kernel : array_like, shape (kH, kW)
    mode : {"valid", "same", "full"}
        As for :func:`correlate2d`; ``"same"`` is centred like scipy's ``convolve2d``.
    method : {"auto", "direct", "im2col", "fft"}

    Returns
    -------
    ndarray
        Same shapes and dtype rules as :func:`correlate2d`.

    Examples
    --------
    The one-page summary example (values equal ``scipy.signal.convolve2d`` exactly):

    >>> import numpy as np
    >>> image = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 0, 0], [7, 8, 9, 0, 0],
    ...                   [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    >>> kernel = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
    >>> convolve2d(image, kernel, mode="valid")
    array([[  6., -15., -18.],
           [  4., -13., -15.],
           [  2.,  -8.,  -9.]])
    """
    image, kernel, mode = _check_inputs(image, kernel, mode)
    return _correlate(image, kernel, mode, method, flipped=True)
