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
