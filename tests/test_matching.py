"""conv_lib.matching: NCC against scikit-image, planted templates, peaks, boxes."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import match_template

import conv_lib as cl


@pytest.mark.parametrize("method", ["auto", "direct", "fft", "im2col"])
def test_ncc_equals_skimage_on_coins(method):
    coins = cl.load_image("coins")[:120, :150]
    template = coins[30:55, 40:62]
    ncc = cl.normalized_cross_correlation(coins, template, method=method)
    ref = match_template(coins, template)
    assert ncc.shape == ref.shape
    np.testing.assert_allclose(ncc, ref, atol=1e-6, rtol=0)


def test_ncc_equals_skimage_random_and_bounded():
    rng = np.random.default_rng(0)
    image = rng.random((40, 33))
    template = rng.random((7, 5))
    ncc = cl.normalized_cross_correlation(image, template)
    np.testing.assert_allclose(ncc, match_template(image, template), atol=1e-6, rtol=0)
    assert np.all(np.abs(ncc) <= 1 + 1e-12)


def test_ncc_invariant_to_affine_brightness():
    rng = np.random.default_rng(1)
    image, template = rng.random((30, 30)), rng.random((6, 6))
    a = cl.normalized_cross_correlation(image, template)
    np.testing.assert_allclose(cl.normalized_cross_correlation(3 * image + 2, template), a, atol=1e-10)
    np.testing.assert_allclose(cl.normalized_cross_correlation(-image, template), -a, atol=1e-10)


def test_flat_windows_score_zero():
    image = np.zeros((10, 10))
    image[6:, 6:] = np.arange(16).reshape(4, 4)
    ncc = cl.normalized_cross_correlation(image, np.arange(9.0).reshape(3, 3))
    assert ncc[0, 0] == 0.0 and np.all(np.isfinite(ncc))


def test_planted_template_found_at_right_place():
    rng = np.random.default_rng(2)
    image = rng.normal(0, 0.2, (80, 90))
    template = rng.random((9, 11))
    for r, c in [(10, 5), (50, 70)]:
        image[r : r + 9, c : c + 11] = 0.5 * template + 1.0  # brightness change must not matter
    dets, ncc = cl.detect_template(image, template, threshold=0.9)
    assert sorted((d.row, d.col) for d in dets) == [(10, 5), (50, 70)]
    assert all(d.score == pytest.approx(1.0, abs=1e-9) for d in dets)
    assert dets[0].center == (dets[0].row + 4.0, dets[0].col + 5.0)


def test_multiscale_finds_enlarged_object():
    from skimage.transform import rescale

    rng = np.random.default_rng(3)
    template = rng.random((12, 12))
    big = rescale(template, 1.5, mode="reflect")  # 18 x 18
    image = rng.normal(0.5, 0.05, (70, 70))
    image[20:38, 30:48] = big
    single, _ = cl.detect_template(image, template, threshold=0.9)
    assert single == []
    dets = cl.detect_template_multiscale(image, template, (1.0, 1.5), threshold=0.9)
    assert len(dets) == 1 and (dets[0].row, dets[0].col, dets[0].height) == (20, 30, 18)


def test_find_peaks_nms():
    r = np.zeros((20, 20))
    r[5, 5], r[6, 6], r[15, 15], r[5, 15] = 1.0, 0.9, 0.8, 0.3
    peaks = cl.find_peaks(r, threshold=0.5, min_distance=2)
    assert peaks.tolist() == [[5, 5], [15, 15]]
    assert cl.find_peaks(r, threshold=0.5, min_distance=0).tolist() == [[5, 5], [6, 6], [15, 15]]
    assert cl.find_peaks(r, threshold=0.2, min_distance=2, max_peaks=1).tolist() == [[5, 5]]
    assert cl.find_peaks(r, threshold=2.0).shape == (0, 2)


def test_box_iou_and_nms():
    a = cl.Detection(0, 0, 10, 10, 0.9)
    b = cl.Detection(0, 5, 10, 10, 0.8)
    c = cl.Detection(30, 30, 4, 4, 0.7)
    assert cl.box_iou(a, a) == 1.0
    assert cl.box_iou(a, b) == pytest.approx(50 / 150)
    assert cl.box_iou(a, c) == 0.0
    assert cl.non_max_suppression([c, b, a], 0.3) == [a, c]
    assert cl.non_max_suppression([c, b, a], 0.5) == [a, b, c]


def test_validation_errors_name_parameter():
    with pytest.raises(ValueError, match="template"):
        cl.normalized_cross_correlation(np.zeros((5, 5)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="iou_threshold"):
        cl.non_max_suppression([], 1.5)


# --- the learned detector -----------------------------------------------------------------

def _random_detector(seed: int = 0):
    from conv_lib.matching import FullyConvDetector

    det = FullyConvDetector(filters=(3, 4), kernel_sizes=(5, 3, 4), window=24, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for name in ("b1", "b2", "b3"):  # nonzero biases: no pre-activation sits on a ReLU kink
        det.params[name] = rng.normal(0, 0.1, det.params[name].shape)
    return det


def test_detector_heatmap_equals_the_score_of_every_window():
    det = _random_detector()
    image = np.random.default_rng(2).random((41, 53))
    heat = det.heatmap(image)
    assert heat.shape == ((41 - 24) // 4 + 1, (53 - 24) // 4 + 1)
    for r in range(heat.shape[0]):
        for c in range(heat.shape[1]):
            window = image[None, None, 4 * r : 4 * r + 24, 4 * c : 4 * c + 24]
            logit = det.loss(window)[0, 1]
            assert heat[r, c] == pytest.approx(1 / (1 + np.exp(-logit)), rel=1e-12)


def test_detector_gradients_match_finite_differences():
    det = _random_detector(3)
    rng = np.random.default_rng(4)
    X, y = rng.random((3, 1, 24, 24)), np.array([1, 0, 1])
    _, grads = det.loss(X, y)
    for name in ("W1", "b1", "W2", "W3", "b3"):
        def f(value, name=name):
            saved = det.params[name]
            det.params[name] = value
            loss = det.loss(X, y)[0]
            det.params[name] = saved
            return loss
        result = cl.check_gradient(f, det.params[name].copy(), grads[name])
        assert result.max_rel_error < 1e-6, (name, result.max_rel_error)


def test_detector_learns_a_bright_square():
    from conv_lib.matching import FullyConvDetector, heatmap_detections

    rng = np.random.default_rng(5)
    X = rng.normal(0, 0.1, (200, 1, 24, 24))
    y = np.arange(200) % 2
    X[y == 1, :, 6:18, 6:18] += 1.0  # positives: a bright 12x12 square in the middle
    det = FullyConvDetector(filters=(4, 4), seed=0)
    cl.train(det, X, y, epochs=5, batch_size=20, optimizer=cl.Adam(lr=1e-2), seed=0)
    assert cl.accuracy(det, X, y) > 0.95
    scene = rng.normal(0, 0.1, (60, 80))
    scene[26:38, 46:58] += 1.0  # the square's window starts at (20, 40): heat-map cell (5, 10)
    boxes = heatmap_detections(det.heatmap(scene), window=24, stride=4, threshold=0.5, min_distance=3)
    assert boxes and (boxes[0].row, boxes[0].col) == (20, 40)


def test_detector_rejects_bad_input():
    from conv_lib.matching import FullyConvDetector

    with pytest.raises(ValueError, match="kernel_sizes"):
        FullyConvDetector(kernel_sizes=(5, 3, 3))
    det = FullyConvDetector()
    with pytest.raises(ValueError, match="X: got shape"):
        det.loss(np.zeros((2, 1, 20, 20)))
    with pytest.raises(ValueError, match="image: got shape"):
        det.heatmap(np.zeros((10, 40)))
