"""Classic hand-designed kernels (filters), by name.

Orientation: kernels are written for **cross-correlation**, the deep-learning convention
(:func:`conv_lib.correlate2d`, :func:`conv_lib.conv2d`): ``sobel_x`` gives a positive
response where the image gets brighter from left to right, ``sobel_y`` where it gets
brighter from top to bottom. With a true convolution (kernel flipped) the signs of these
antisymmetric kernels swap; the symmetric ones (box, gaussian, laplacian, sharpen) do not
change.

Every call returns a new, writable float64 array.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from conv_lib.validation import check_choice, check_positive_int

__all__ = ["KERNEL_NAMES", "gaussian_kernel", "get_kernel"]

_FIXED_3X3: dict[str, list[list[int]]] = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "prewitt_x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt_y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian_diag": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    # The one-page summary's "edge detection" kernel: a vertical-edge detector (left minus right
    # columns under cross-correlation, right minus left under convolution).
    "summary_edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
}

#: Every name :func:`get_kernel` accepts.
KERNEL_NAMES: tuple[str, ...] = (
    "identity",
    "box",
    "gaussian",
    *(name for name in _FIXED_3X3 if name != "identity"),
)

_ANY_SIZE = ("box", "gaussian")


def _default_sigma(size: int) -> float:
    # OpenCV's rule for getGaussianKernel: sigma = 0.8 for size 3, growing with the size.
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


def _check_sigma(sigma: Any) -> float:
    if isinstance(sigma, (bool, np.bool_)) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma: got {sigma!r}; expected a positive number")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma: got {sigma!r}; expected a positive finite number")
    return float(sigma)


def gaussian_kernel(size: int, sigma: float | None = None) -> np.ndarray:
    """A ``size x size`` Gaussian blur kernel, normalised to sum to 1.

    ``K[a, b] ∝ exp(-((a - c)**2 + (b - c)**2) / (2 sigma**2))`` with ``c = (size - 1) / 2``.

    Parameters
    ----------
    size : int
        ``>= 1`` (odd sizes have a centre pixel; even sizes are allowed).
    sigma : float, optional
        Standard deviation in pixels, ``> 0``. Default ``0.3 * ((size - 1) / 2 - 1) + 0.8``
        (OpenCV's rule; 0.8 for size 3).

    Returns
    -------
    numpy.ndarray, shape (size, size), float64
        Symmetric, positive, sums to 1.
    """
    size = check_positive_int("size", size)
    sigma = _default_sigma(size) if sigma is None else _check_sigma(sigma)
    offsets = np.arange(size) - (size - 1) / 2
    profile = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def get_kernel(name: str, size: int = 3, sigma: float | None = None) -> np.ndarray:
    """A classic kernel by name.

    Parameters
    ----------
    name : str
        One of :data:`KERNEL_NAMES`: ``"identity"``, ``"box"`` (mean filter, sums to 1),
        ``"gaussian"`` (see :func:`gaussian_kernel`), ``"sobel_x"``, ``"sobel_y"``,
        ``"prewitt_x"``, ``"prewitt_y"``, ``"laplacian"`` (4-neighbour),
        ``"laplacian_diag"`` (8-neighbour), ``"sharpen"``, ``"emboss"``, ``"summary_edge"``
        (the one-page summary's ``[[1, 0, -1]] * 3``).
    size : int
        Side length. Any size ``>= 1`` for ``"box"`` and ``"gaussian"``; 3 for the others.
    sigma : float, optional
        Only for ``"gaussian"``.

    Returns
    -------
    numpy.ndarray, shape (size, size), float64
        A new array each call.
    """
    check_choice("name", name, KERNEL_NAMES)
    size = check_positive_int("size", size)
    if name not in _ANY_SIZE and size != 3:
        raise ValueError(
            f"size: got {size} for {name!r}; expected 3 (only 'box' and 'gaussian' take other sizes)"
        )
    if sigma is not None and name != "gaussian":
        raise ValueError(f"sigma: got {sigma!r} for {name!r}; expected None (only 'gaussian' takes sigma)")
    if name == "gaussian":
        return gaussian_kernel(size, sigma)
    if name == "box":
        return np.full((size, size), 1.0 / size**2)
    return np.array(_FIXED_3X3[name], dtype=np.float64)
