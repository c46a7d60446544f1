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

from conv_lib.arithmetic import output_size
from conv_lib.network import (
    conv_backward,
    conv_forward,
    max_pool_backward,
    max_pool_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)
from conv_lib.signal2d import correlate2d
from conv_lib.validation import as_array, check_positive_int

__all__ = [
    "Detection",
    "FullyConvDetector",
    "heatmap_detections",
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


# --------------------------------------------------------------------------------------
# A learned detector: a fully convolutional network
# --------------------------------------------------------------------------------------
class FullyConvDetector:
    """A small fully convolutional network that scores every window of an image.

    ``conv(F1, k1) -> ReLU -> max pool 2 -> conv(F2, k2) -> ReLU -> max pool 2 ->
    conv(1, k3)``, all without padding. Trained on ``window x window`` patches, its output
    is one logit per patch; run on a larger image, the same layers give a *heat map* of
    logits, one per window, with a stride of 4 pixels (the two pools). No layer is dense,
    so nothing fixes the input size: this is how a classifier becomes a detector
    (OverFeat, Sermanet et al. 2014; fully convolutional networks, Long et al. 2015).

    The model has the interface of :mod:`conv_lib.network`'s models (``params``,
    ``loss(X, y=None)``): ``loss`` returns two-class scores ``(0, logit)``, so the
    softmax cross-entropy of :func:`conv_lib.network.train` is the logistic loss.

    Parameters
    ----------
    filters : (int, int)
        ``F1, F2``.
    kernel_sizes : (int, int, int)
        ``k1, k2, k3``; the last layer must reduce a ``window`` patch to ``1 x 1``.
    window : int
        Side of the training patches (and of the receptive field of one heat-map cell).
    seed : int
        Seed of the He-normal initialisation.

    Notes
    -----
    Parameters: ``W1 (F1, 1, k1, k1)``, ``b1``, ``W2 (F2, F1, k2, k2)``, ``b2``,
    ``W3 (1, F2, k3, k3)``, ``b3``.
    """

    stride = 4

    def __init__(self, filters: tuple[int, int] = (8, 16), kernel_sizes: tuple[int, int, int] = (5, 3, 4),
                 window: int = 24, seed: int = 0) -> None:
        f1, f2 = (check_positive_int("filters", v) for v in filters)
        k1, k2, k3 = (check_positive_int("kernel_sizes", v) for v in kernel_sizes)
        self.window = check_positive_int("window", window)
        side = output_size(output_size(output_size(self.window, k1) // 2, k2) // 2, k3)
        if side != 1:
            raise ValueError(f"kernel_sizes: got {kernel_sizes}; they reduce a {window}x{window} window to "
                             f"{side}x{side}, expected 1x1")
        rng = np.random.default_rng(seed)
        shapes = {"W1": (f1, 1, k1, k1), "W2": (f2, f1, k2, k2), "W3": (1, f2, k3, k3)}
        self.params: dict[str, np.ndarray] = {}
        for n, (name, shape) in enumerate(shapes.items(), start=1):
            fan_in = shape[1] * shape[2] * shape[3]
            self.params[name] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
            self.params[f"b{n}"] = np.zeros(shape[0])

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, list]:
        p = self.params
        caches = []
        h = X
        for n in (1, 2):
            h, c_conv = conv_forward(h, p[f"W{n}"], p[f"b{n}"])
            h, c_relu = relu_forward(h)
            h, c_pool = max_pool_forward(h, 2)
            caches.append((c_conv, c_relu, c_pool))
        logits, c3 = conv_forward(h, p["W3"], p["b3"])
        caches.append(c3)
        return logits, caches

    def feature_maps(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Activations of ``X (N, 1, H, W)``: ``"conv1"``, ``"conv2"`` (after ReLU and pool), ``"logit"``."""
        X = as_array("X", X, ndim=4, floating=True)
        p, out, h = self.params, {}, X
        for n in (1, 2):
            h = max_pool_forward(relu_forward(conv_forward(h, p[f"W{n}"], p[f"b{n}"])[0])[0], 2)[0]
            out[f"conv{n}"] = h
        out["logit"] = conv_forward(h, p["W3"], p["b3"])[0]
        return out

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):  # noqa: ANN201 - scores or (loss, grads)
        """Scores ``(N, 2)`` of ``X (N, 1, window, window)``; with labels ``y`` (0/1), ``(loss, grads)``."""
        X = as_array("X", X, ndim=4, floating=True)
        if X.shape[1:] != (1, self.window, self.window):
            raise ValueError(f"X: got shape {X.shape}; expected (N, 1, {self.window}, {self.window}) patches")
        logits, caches = self._forward(X)
        scores = np.concatenate([np.zeros((len(X), 1)), logits.reshape(len(X), 1)], axis=1)
        if y is None:
            return scores
        loss, dscores = softmax_cross_entropy(scores, y)
        grads: dict[str, np.ndarray] = {}
        dh, grads["W3"], grads["b3"] = conv_backward(dscores[:, 1].reshape(logits.shape), caches[2])
        for n in (2, 1):
            c_conv, c_relu, c_pool = caches[n - 1]
            dh = relu_backward(max_pool_backward(dh, c_pool), c_relu)
            dh, grads[f"W{n}"], grads[f"b{n}"] = conv_backward(dh, c_conv)
        return loss, grads

    def heatmap(self, image: np.ndarray) -> np.ndarray:
        """Probability that the ``window x window`` window at ``(stride * r, stride * c)`` holds the object.

        Parameters
        ----------
        image : ndarray, shape (H, W), H and W at least ``window``

        Returns
        -------
        heat : ndarray, shape ((H - window) // 4 + 1, (W - window) // 4 + 1), values in (0, 1)
            The sigmoid of the logit of each window (rows and columns beyond the last whole
            stride step are not scored).
        """
        image = as_array("image", image, ndim=2, floating=True)
        if min(image.shape) < self.window:
            raise ValueError(f"image: got shape {image.shape}; expected both sides >= window = {self.window}")
        logits, _ = self._forward(image[None, None])
        return 1.0 / (1.0 + np.exp(-logits[0, 0]))


def heatmap_detections(heat: np.ndarray, window: int, stride: int, threshold: float = 0.5,
                       min_distance: int = 2) -> list[Detection]:
    """Boxes at the peaks of a detector's heat map (cell ``(r, c)`` = window at ``(stride*r, stride*c)``).

    Parameters
    ----------
    heat : ndarray, shape (h, w)
        Scores, e.g. :meth:`FullyConvDetector.heatmap`.
    window, stride : int
        Box side and the step between neighbouring cells, in pixels.
    threshold : float
        Smallest score of a detection.
    min_distance : int
        Suppression radius, in heat-map cells (see :func:`find_peaks`).

    Returns
    -------
    list of Detection
        Strongest first.
    """
    window = check_positive_int("window", window)
    stride = check_positive_int("stride", stride)
    peaks = find_peaks(heat, threshold, min_distance)
    return [Detection(int(r) * stride, int(c) * stride, window, window, float(heat[r, c])) for r, c in peaks]
