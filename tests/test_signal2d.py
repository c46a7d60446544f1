"""conv_lib.correlate2d / convolve2d against scipy.signal, every method and mode."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from conv_lib import METHODS, choose_method, convolve2d, correlate2d

SUMMARY_IMAGE = np.array(
    [[1, 2, 3, 0, 0], [4, 5, 6, 0, 0], [7, 8, 9, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
)
SUMMARY_KERNEL = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]])

# (H, W, kH, kW): non-square, even and odd, 1-wide, kernel == image, kernel > image (same/full)
SHAPES = [
    (5, 5, 3, 3),
    (7, 9, 2, 4),
    (8, 5, 3, 5),
    (6, 8, 4, 3),
    (9, 9, 1, 1),
    (10, 7, 1, 6),
    (4, 11, 4, 2),
    (6, 6, 6, 6),
    (13, 12, 5, 4),
    (3, 2, 5, 6),
    (1, 8, 1, 3),
    (31, 29, 8, 7),
]
FUNCS = [(correlate2d, scipy.signal.correlate2d), (convolve2d, scipy.signal.convolve2d)]


def _fits(shape, mode):
    h, w, kh, kw = shape
    return mode != "valid" or (kh <= h and kw <= w)


@pytest.mark.parametrize("method", METHODS + ("auto",))
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("pair", FUNCS, ids=["correlate2d", "convolve2d"])
def test_matches_scipy_float64(pair, mode, method):
    ours, ref = pair
    rng = np.random.default_rng([len(mode), len(method), len(ours.__name__)])
    checked = 0
    for shape in SHAPES:
        if not _fits(shape, mode):
            continue
        h, w, kh, kw = shape
        image, kernel = rng.standard_normal((h, w)), rng.standard_normal((kh, kw))
        got = ours(image, kernel, mode=mode, method=method)
        want = ref(image, kernel, mode=mode)
        assert got.dtype == np.float64
        assert got.shape == want.shape, shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max(), err_msg=str(shape))
        checked += 1
    assert checked >= 9


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_matches_scipy_float32(mode, method):
    rng = np.random.default_rng(7)
    for h, w, kh, kw in [(16, 12, 3, 4), (9, 20, 5, 5), (24, 24, 2, 7)]:
        image = rng.standard_normal((h, w)).astype(np.float32)
        kernel = rng.standard_normal((kh, kw)).astype(np.float32)
        for ours, ref in FUNCS:
            got = ours(image, kernel, mode=mode, method=method)
            want = ref(image.astype(np.float64), kernel.astype(np.float64), mode=mode)
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("method", ["direct", "im2col", "auto"])
def test_seed_example_exact(method):
    want = scipy.signal.convolve2d(SUMMARY_IMAGE, SUMMARY_KERNEL, mode="valid")
    got = convolve2d(SUMMARY_IMAGE, SUMMARY_KERNEL, mode="valid", method=method)
    assert got.dtype == np.float64
    assert np.array_equal(got, want)
    assert got.tolist() == [[6, -15, -18], [4, -13, -15], [2, -8, -9]]


def test_seed_example_fft_close():
    want = scipy.signal.convolve2d(SUMMARY_IMAGE, SUMMARY_KERNEL, mode="valid")
    np.testing.assert_allclose(convolve2d(SUMMARY_IMAGE, SUMMARY_KERNEL, method="fft"), want, atol=1e-12)


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("method", ["direct", "im2col", "auto"])
def test_integer_inputs_exact(mode, method):
    rng = np.random.default_rng(3)
    image = rng.integers(-1000, 1000, size=(40, 33))
    kernel = rng.integers(-50, 50, size=(9, 8))  # 72 taps: "auto" would pick FFT for floats
    for ours, ref in FUNCS:
        got = ours(image, kernel, mode=mode, method=method)
        assert np.array_equal(got, ref(image, kernel, mode=mode))


def test_bool_and_mixed_dtypes():
    image = np.eye(5, dtype=bool)
    kernel = np.ones((2, 2), dtype=np.float32)
    got = correlate2d(image, kernel)
    assert got.dtype == np.float64
    assert np.array_equal(got, scipy.signal.correlate2d(image.astype(int), np.ones((2, 2), int), "valid"))
    mixed = correlate2d(np.ones((4, 4), np.float32), np.ones((2, 2), np.float64))
    assert mixed.dtype == np.float64


def test_convolve_is_correlate_with_flipped_kernel():
    rng = np.random.default_rng(11)
    image, kernel = rng.standard_normal((12, 10)), rng.standard_normal((4, 3))
    for mode in ("valid", "full"):
        np.testing.assert_allclose(
            convolve2d(image, kernel, mode), correlate2d(image, kernel[::-1, ::-1], mode), rtol=1e-13
        )


def test_same_centring_even_kernel():
    """A delta image shows where scipy's "same" puts the kernel for even sizes."""
    image = np.zeros((6, 6))
    image[2, 3] = 1.0
    kernel = np.arange(1.0, 13.0).reshape(3, 4)
    for ours, ref in FUNCS:
        got = ours(image, kernel, mode="same")
        np.testing.assert_array_equal(got, ref(image, kernel, mode="same"))
    # correlation of a delta is the flipped kernel; width 4 -> pads 1 before, 2 after, so
    # kernel[0, 0] lands at (2 + 1, 3 + 1) and kernel[2, 3] at (2 + 1 - 2, 3 + 1 - 3)
    corr = correlate2d(image, kernel, mode="same")
    assert corr[3, 4] == 1.0 and corr[1, 1] == 12.0
    assert np.count_nonzero(corr) == 12


def test_large_image_direct_threads_match_scipy():
    """Big enough for the row-band/threaded path of "direct"."""
    rng = np.random.default_rng(5)
    image, kernel = rng.standard_normal((700, 650)), rng.standard_normal((3, 5))
    want = scipy.signal.correlate2d(image, kernel, mode="same")
    for method in METHODS:
        np.testing.assert_allclose(correlate2d(image, kernel, "same", method), want, rtol=1e-10, atol=1e-11)


def test_choose_method_2d():
    assert choose_method((512, 512), (3, 3)) == "direct"
    assert choose_method((2048, 2048), (31, 31)) == "fft"
    assert choose_method((2048, 2048), (31, 31), dtype=np.int64) == "direct"
    assert choose_method((8, 8), (3, 3)) in {"direct", "im2col", "fft"}
