"""Template matching by normalised cross-correlation, built on conv_lib.correlate2d.

The normalised cross-correlation (NCC) of an image ``I`` with a template ``T`` of
``n = h * w`` pixels, at the window whose top-left corner is ``(i, j)``, is

    NCC(i, j) = sum_{m,n} (I_w(m, n) - mean(I_w)) (T(m, n) - mean(T))
                / sqrt( sum (I_w - mean(I_w))^2 * sum (T - mean(T))^2 )

where ``I_w = I[i:i+h, j:j+w]``. It is a Pearson correlation coefficient in ``[-1, 1]``,
unchanged by any affine change of brightness ``a * I + b`` (``a > 0``) of the window.
Every sum over a window is one cross-correlation:

- numerator: ``correlate2d(I, T - mean(T))`` (the ``mean(I_w)`` term vanishes because
  ``T - mean(T)`` sums to zero);
- window sums of ``I`` and ``I**2``: ``correlate2d(I, ones)`` and ``correlate2d(I**2, ones)``.

This is the same estimator as :func:`skimage.feature.match_template` (Lewis, 1995) with
``pad_input=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conv_lib.signal2d import correlate2d
from conv_lib.validation import as_array, check_positive_int

__all__ = [
    "Detection",
    "box_iou",
    "detect_template",
    "detect_template_multiscale",
    "find_peaks",
    "non_max_suppression",
    "normalized_cross_correlation",
]


def normalized_cross_correlation(image: np.ndarray, template: np.ndarray, method: str = "auto") -> np.ndarray:
    """NCC of ``template`` at every position where it fits inside ``image``.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    template : ndarray, shape (h, w), with ``h <= H`` and ``w <= W``
    method : str
        Passed to :func:`conv_lib.signal2d.correlate2d` ("auto", "direct", "im2col", "fft").

    Returns
    -------
    ncc : ndarray of float64, shape (H - h + 1, W - w + 1)
        ``ncc[i, j]`` scores the window with top-left corner ``(i, j)``. Windows of
        (numerically) constant intensity score 0, as in scikit-image.
    """
    image = as_array("image", image, ndim=2, floating=True).astype(np.float64, copy=False)
    template = as_array("template", template, ndim=2, floating=True).astype(np.float64, copy=False)
    if template.shape[0] > image.shape[0] or template.shape[1] > image.shape[1]:
        raise ValueError(
            f"template: got shape {template.shape}; expected at most the image shape {image.shape}"
        )
    n = template.size
    t0 = template - template.mean()
    t_ssd = float(np.sum(t0 * t0))
    numerator = correlate2d(image, t0, mode="valid", method=method)
    ones = np.ones_like(template)
    win_sum = correlate2d(image, ones, mode="valid", method=method)
    win_sum2 = correlate2d(image * image, ones, mode="valid", method=method)
    denominator = np.maximum(win_sum2 - win_sum * win_sum / n, 0) * t_ssd
    denominator = np.sqrt(denominator)
    out = np.zeros_like(numerator)
    mask = denominator > np.finfo(np.float64).eps
    out[mask] = numerator[mask] / denominator[mask]
    return out


def find_peaks(
    response: np.ndarray,
    threshold: float,
    min_distance: int = 1,
    max_peaks: int | None = None,
) -> np.ndarray:
    """Local maxima of ``response`` by greedy non-maximum suppression.

    Candidates (values ``>= threshold``) are visited from the highest value down; each
    one is kept unless an already kept peak lies within ``min_distance`` in both
    directions (Chebyshev distance), and then suppresses its own neighbourhood.

    Parameters
    ----------
    response : ndarray, shape (H, W)
    threshold : float
        Smallest value a peak may have.
    min_distance : int
        Kept peaks are more than ``min_distance`` apart in row or column.
    max_peaks : int, optional
        Stop after this many peaks.

    Returns
    -------
    peaks : ndarray of int, shape (P, 2)
        ``(row, col)`` of each peak, strongest first.
    """
    response = as_array("response", response, ndim=2, floating=True)
    min_distance = check_positive_int("min_distance", min_distance, minimum=0)
    limit = np.inf if max_peaks is None else check_positive_int("max_peaks", max_peaks)
    rows, cols = np.nonzero(response >= threshold)
    order = np.argsort(-response[rows, cols], kind="stable")
    suppressed = np.zeros(response.shape, dtype=bool)
    peaks = []
    d = min_distance
    for r, c in zip(rows[order], cols[order], strict=True):
        if suppressed[r, c]:
            continue
        peaks.append((r, c))
        if len(peaks) >= limit:
            break
        suppressed[max(r - d, 0) : r + d + 1, max(c - d, 0) : c + d + 1] = True
    return np.array(peaks, dtype=int).reshape(-1, 2)


@dataclass(frozen=True)
class Detection:
    """One detected window: top-left corner ``(row, col)``, size ``(height, width)``, score."""

    row: int
    col: int
    height: int
    width: int
    score: float

    @property
    def center(self) -> tuple[float, float]:
        """Centre ``(row, col)`` of the box, in pixels."""
        return (self.row + (self.height - 1) / 2, self.col + (self.width - 1) / 2)


def detect_template(
    image: np.ndarray,
    template: np.ndarray,
    threshold: float = 0.5,
    min_distance: int | None = None,
    max_detections: int | None = None,
) -> tuple[list[Detection], np.ndarray]:
    """Boxes where ``template`` matches ``image`` (NCC peaks after non-maximum suppression).

    Parameters
    ----------
    image : ndarray, shape (H, W)
    template : ndarray, shape (h, w)
    threshold : float
        Smallest NCC a detection may have.
    min_distance : int, optional
        Suppression radius; defaults to half the smaller template side.
    max_detections : int, optional

    Returns
    -------
    detections : list of Detection
        Strongest first.
    ncc : ndarray, shape (H - h + 1, W - w + 1)
        The NCC map the detections come from.
    """
    ncc = normalized_cross_correlation(image, template)
    h, w = np.shape(template)
    if min_distance is None:
        min_distance = max(min(h, w) // 2, 1)
    peaks = find_peaks(ncc, threshold, min_distance, max_detections)
    dets = [Detection(int(r), int(c), h, w, float(ncc[r, c])) for r, c in peaks]
    return dets, ncc


def box_iou(a: Detection, b: Detection) -> float:
    """Intersection over union of two boxes (pixel sets), in ``[0, 1]``."""
    top, left = max(a.row, b.row), max(a.col, b.col)
    bottom = min(a.row + a.height, b.row + b.height)
    right = min(a.col + a.width, b.col + b.width)
    inter = max(bottom - top, 0) * max(right - left, 0)
    union = a.height * a.width + b.height * b.width - inter
    return inter / union if union else 0.0


def non_max_suppression(detections: list[Detection], iou_threshold: float = 0.3) -> list[Detection]:
    """Greedy box non-maximum suppression.

    Boxes are visited from the highest score down; a box is kept unless its
    :func:`box_iou` with an already kept box exceeds ``iou_threshold``.

    Parameters
    ----------
    detections : list of Detection
    iou_threshold : float in [0, 1]

    Returns
    -------
    list of Detection
        The kept boxes, strongest first.
    """
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold: got {iou_threshold}; expected a number in [0, 1]")
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if all(box_iou(det, k) <= iou_threshold for k in kept):
            kept.append(det)
    return kept


def detect_template_multiscale(
    image: np.ndarray,
    template: np.ndarray,
    scales: tuple[float, ...] | list[float],
    threshold: float = 0.5,
    iou_threshold: float = 0.3,
) -> list[Detection]:
    """:func:`detect_template` with the template resized to each of ``scales``, then
    :func:`non_max_suppression` across scales.

    NCC is not scale invariant: an object twice the template's size matches poorly. The
    classical remedy is to try several template sizes. Resizing uses
    :func:`skimage.transform.rescale` with anti-aliasing.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    template : ndarray, shape (h, w)
    scales : sequence of float
        Template zoom factors; resized templates larger than the image are skipped.
    threshold : float
        Smallest NCC a detection may have.
    iou_threshold : float
        Overlap above which the weaker of two boxes is removed.

    Returns
    -------
    list of Detection
        Strongest first.
    """
    from skimage.transform import rescale  # imported here: only this function needs it

    image = as_array("image", image, ndim=2, floating=True)
    template = as_array("template", template, ndim=2, floating=True)
    found: list[Detection] = []
    for scale in scales:
        if not scale > 0:
            raise ValueError(f"scales: got {scale!r}; expected positive numbers")
        resized = rescale(template, scale, anti_aliasing=scale < 1, mode="reflect")
        if resized.shape[0] > image.shape[0] or resized.shape[1] > image.shape[1]:
            continue
        dets, _ = detect_template(image, resized, threshold)
        found.extend(dets)
    return non_max_suppression(found, iou_threshold)
