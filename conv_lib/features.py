"""Hand-designed convolutional features: image gradients, HOG-like histograms, blob and
line (vessel) filters.

Every filter response is a :func:`conv_lib.signal2d.correlate2d`; this module only
builds kernels and pools responses. Used by the applications chapter (faces, retina,
microaneurysms).
"""

from __future__ import annotations

import numpy as np

from conv_lib.kernels import gaussian_kernel, get_kernel
from conv_lib.signal2d import correlate2d
from conv_lib.validation import as_array, check_positive_int

__all__ = [
    "gaussian_blur",
    "gradient_features",
    "hog_like",
    "line_kernel",
    "log_kernel",
    "max_filter_response",
]


def gradient_features(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sobel gradients of a 2-D image (zero padding, same size as the input).

    Parameters
    ----------
    image : ndarray, shape (H, W)

    Returns
    -------
    gx, gy : ndarray, shape (H, W)
        Responses to conv_lib's ``sobel_x`` and ``sobel_y`` kernels (cross-correlation).
    magnitude : ndarray, shape (H, W)
        ``hypot(gx, gy)``.
    orientation : ndarray, shape (H, W)
        Unsigned gradient orientation ``arctan2(gy, gx) mod pi``, in ``[0, pi)``.
    """
    image = as_array("image", image, ndim=2, floating=True)
    gx = correlate2d(image, get_kernel("sobel_x"), mode="same")
    gy = correlate2d(image, get_kernel("sobel_y"), mode="same")
    return gx, gy, np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)


def hog_like(image: np.ndarray, cell: int = 5, bins: int = 9, border: int = 1) -> np.ndarray:
    """Histogram-of-oriented-gradients style descriptor (Dalal and Triggs, 2005), simplified.

    The Sobel gradient magnitude of each pixel votes into one of ``bins`` unsigned
    orientation bins (hard assignment) of the ``cell x cell`` block it lies in; each
    cell's histogram is L2-normalised. No block normalisation or interpolation.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    cell : int
        Cell side in pixels. Rows and columns beyond the last full cell are dropped.
    bins : int
        Orientation bins over ``[0, pi)``.
    border : int
        Pixels dropped on each side first (zero padding makes the Sobel response there
        an artefact of the padding).

    Returns
    -------
    descriptor : ndarray, shape ((H - 2 border) // cell * (W - 2 border) // cell * bins,)
    """
    cell = check_positive_int("cell", cell)
    bins = check_positive_int("bins", bins)
    border = check_positive_int("border", border, minimum=0)
    _, _, mag, ori = gradient_features(image)
    if border:
        mag, ori = mag[border:-border, border:-border], ori[border:-border, border:-border]
    ch, cw = mag.shape[0] // cell, mag.shape[1] // cell
    if ch == 0 or cw == 0:
        raise ValueError(f"cell: got {cell}; expected at most the cropped image size {mag.shape}")
    mag, ori = mag[: ch * cell, : cw * cell], ori[: ch * cell, : cw * cell]
    b = np.minimum((ori / np.pi * bins).astype(int), bins - 1)
    onehot = (b[..., None] == np.arange(bins)) * mag[..., None]  # (H, W, bins)
    hist = onehot.reshape(ch, cell, cw, cell, bins).sum(axis=(1, 3))  # (ch, cw, bins)
    hist /= np.sqrt(np.sum(hist**2, axis=-1, keepdims=True)) + 1e-8
    return hist.ravel()


def log_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """Scale-normalised Laplacian-of-Gaussian kernel ``sigma^2 * (d2/dx2 + d2/dy2) G``.

    Zero-mean (so flat regions give 0); a dark blob of radius about ``sigma * sqrt(2)``
    gives a strong *positive* response at its centre.

    Parameters
    ----------
    sigma : float
        Gaussian scale in pixels.
    size : int, optional
        Odd side; defaults to ``2 * ceil(4 sigma) + 1``.

    Returns
    -------
    kernel : ndarray, shape (size, size)
    """
    if not sigma > 0:
        raise ValueError(f"sigma: got {sigma}; expected a positive number")
    size = 2 * int(np.ceil(4 * sigma)) + 1 if size is None else check_positive_int("size", size)
    r = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    q = (xx**2 + yy**2) / (2 * sigma**2)
    g = np.exp(-q)
    k = (q - 1) / (np.pi * sigma**2) * g  # sigma^2 * LoG, up to the Gaussian's normaliser
    return k - k.mean()


def line_kernel(sigma: float, length: int, angle: float) -> np.ndarray:
    """Matched filter for a dark line (a vessel) with a Gaussian cross-section.

    Chaudhuri et al. (1989): across the line the profile is ``-exp(-d^2 / 2 sigma^2)``,
    along it the kernel extends ``length`` pixels. The kernel is made zero-mean over its
    support, so flat regions respond with 0 and a *dark* line on a brighter background
    responds positively; it is scaled to unit L1 norm.

    Parameters
    ----------
    sigma : float
        Line half-width scale in pixels.
    length : int
        Extent along the line in pixels.
    angle : float
        Direction of the line in radians (0 = horizontal).

    Returns
    -------
    kernel : ndarray, shape (s, s), ``s`` odd
    """
    if not sigma > 0:
        raise ValueError(f"sigma: got {sigma}; expected a positive number")
    length = check_positive_int("length", length)
    half = int(np.ceil(max(3 * sigma, length / 2)))
    r = np.arange(-half, half + 1)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    # distance across the line (d) and along it (u)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    d = -xx * np.sin(angle) + yy * np.cos(angle)
    support = (np.abs(u) <= length / 2) & (np.abs(d) <= 3 * sigma)
    k = np.where(support, -np.exp(-(d**2) / (2 * sigma**2)), 0.0)
    k[support] -= k[support].mean()
    return k / np.abs(k).sum()


def max_filter_response(image: np.ndarray, kernels: list[np.ndarray] | tuple[np.ndarray, ...]) -> np.ndarray:
    """Pixelwise maximum of the ``same``-size responses of ``image`` to several kernels.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    kernels : sequence of 2-D ndarrays

    Returns
    -------
    response : ndarray, shape (H, W)
    """
    image = as_array("image", image, ndim=2, floating=True)
    if len(kernels) == 0:
        raise ValueError("kernels: got an empty sequence; expected at least one kernel")
    return np.max([correlate2d(image, k, mode="same") for k in kernels], axis=0)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``same``-size Gaussian blur with conv_lib's :func:`~conv_lib.kernels.gaussian_kernel`."""
    size = 2 * int(np.ceil(3 * sigma)) + 1
    image = as_array("image", image, ndim=2, floating=True)
    return correlate2d(image, gaussian_kernel(size, sigma), mode="same")
