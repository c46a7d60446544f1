"""Named kernels and the course's data loaders."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import skimage.data
import sklearn.datasets

from conv_lib import (
    IMAGE_NAMES,
    KERNEL_NAMES,
    SUMMARY_IMAGE,
    SUMMARY_KERNEL,
    correlate2d_loops,
    gaussian_kernel,
    get_kernel,
    load_digits,
    load_faces,
    load_image,
)

# --- kernels ---------------------------------------------------------------------------------


def test_kernel_names():
    assert set(KERNEL_NAMES) == {
        "identity",
        "box",
        "gaussian",
        "sobel_x",
        "sobel_y",
        "prewitt_x",
        "prewitt_y",
        "laplacian",
        "laplacian_diag",
        "sharpen",
        "emboss",
        "summary_edge",
    }
    assert len(KERNEL_NAMES) == len(set(KERNEL_NAMES))


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_every_kernel_is_a_fresh_float64_3x3(name):
    kernel = get_kernel(name)
    assert kernel.shape == (3, 3) and kernel.dtype == np.float64
    kernel[...] = 99.0
    assert not np.any(get_kernel(name) == 99.0)


def test_summary_edge_is_the_summary_kernel():
    np.testing.assert_array_equal(get_kernel("summary_edge"), SUMMARY_KERNEL)


def test_sums():
    for name in ("identity", "box", "gaussian", "sharpen", "emboss"):
        assert get_kernel(name).sum() == pytest.approx(1.0)
    zero_sum = ("sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "laplacian", "laplacian_diag", "summary_edge")
    for name in zero_sum:
        assert get_kernel(name).sum() == 0.0


def test_gradient_kernels_are_oriented_for_cross_correlation():
    ramp_right = np.tile(np.arange(6.0), (6, 1))  # brighter to the right
    ramp_down = ramp_right.T  # brighter downwards
    for axis, ramp in (("x", ramp_right), ("y", ramp_down)):
        assert np.all(correlate2d_loops(ramp, get_kernel(f"sobel_{axis}")) == 8.0)
        assert np.all(correlate2d_loops(ramp, get_kernel(f"prewitt_{axis}")) == 6.0)
    # the transposed direction sees no change
    assert np.all(correlate2d_loops(ramp_right, get_kernel("sobel_y")) == 0.0)
    np.testing.assert_array_equal(get_kernel("sobel_y"), get_kernel("sobel_x").T)


def test_identity_laplacian_box_behave():
    image = np.random.default_rng(0).random((6, 7))
    np.testing.assert_allclose(
        correlate2d_loops(image, get_kernel("identity"), padding=1), image, rtol=0, atol=0
    )
    assert np.all(correlate2d_loops(np.full((5, 5), 3.0), get_kernel("laplacian")) == 0.0)
    np.testing.assert_allclose(correlate2d_loops(np.full((6, 6), 2.0), get_kernel("box", size=4)), 2.0)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_box_sizes(size):
    box = get_kernel("box", size=size)
    assert box.shape == (size, size)
    assert np.all(box == box[0, 0]) and box.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("size", "sigma"), [(1, 1.0), (3, 0.8), (5, 1.0), (7, 2.5), (4, 1.5)])
def test_gaussian_matches_scipy_window(size, sigma):
    window = scipy.signal.windows.gaussian(size, std=sigma)
    expected = np.outer(window, window) / np.outer(window, window).sum()
    np.testing.assert_allclose(gaussian_kernel(size, sigma), expected, rtol=1e-12)
    np.testing.assert_allclose(get_kernel("gaussian", size=size, sigma=sigma), expected, rtol=1e-12)


def test_gaussian_default_sigma():
    np.testing.assert_allclose(gaussian_kernel(3), gaussian_kernel(3, 0.8))
    np.testing.assert_allclose(get_kernel("gaussian"), gaussian_kernel(3, 0.8))
    wide = gaussian_kernel(9)
    assert wide[4, 4] == wide.max() and wide.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(wide, wide.T)
    np.testing.assert_allclose(wide, wide[::-1, ::-1])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: get_kernel("sobel"),
            ValueError,
            r"name: got 'sobel'; expected one of 'identity', 'box'.*'summary_edge'",
        ),
        (lambda: get_kernel(3), ValueError, r"name: got 3; expected one of"),
        (
            lambda: get_kernel("sobel_x", size=5),
            ValueError,
            r"size: got 5 for 'sobel_x'; expected 3 \(only 'box' and 'gaussian' take other sizes\)",
        ),
        (lambda: get_kernel("box", size=0), ValueError, r"size: got 0; expected an integer >= 1"),
        (lambda: get_kernel("box", size=2.5), TypeError, r"size: got 2.5; expected an integer"),
        (
            lambda: get_kernel("box", sigma=1.0),
            ValueError,
            r"sigma: got 1.0 for 'box'; expected None \(only 'gaussian' takes sigma\)",
        ),
        (
            lambda: get_kernel("gaussian", sigma=0),
            ValueError,
            r"sigma: got 0; expected a positive finite number",
        ),
        (lambda: gaussian_kernel(3, -1.0), ValueError, r"sigma: got -1.0; expected a positive finite number"),
        (lambda: gaussian_kernel(3, float("nan")), ValueError, r"sigma: got nan"),
        (lambda: gaussian_kernel(3, "wide"), TypeError, r"sigma: got 'wide'; expected a positive number"),
        (lambda: gaussian_kernel(0, 1.0), ValueError, r"size: got 0"),
    ],
)
def test_kernel_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- the one-page summary's data -------------------------------------------------------------------------


def test_summary_arrays_as_in_the_one_page_summary():
    np.testing.assert_array_equal(
        SUMMARY_IMAGE,
        [[1, 2, 3, 0, 0], [4, 5, 6, 0, 0], [7, 8, 9, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    )
    np.testing.assert_array_equal(SUMMARY_KERNEL, [[1, 0, -1], [1, 0, -1], [1, 0, -1]])
    assert SUMMARY_IMAGE.dtype.kind == "i" and SUMMARY_KERNEL.dtype.kind == "i"


def test_summary_arrays_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        SUMMARY_IMAGE[0, 0] = 100
    with pytest.raises(ValueError, match="read-only"):
        SUMMARY_KERNEL[0, 0] = 100
    assert SUMMARY_IMAGE[0, 0] == 1


# --- images ------------------------------------------------------------------------------------


EXPECTED_SHAPES = {
    "camera": (512, 512),
    "coins": (303, 384),
    "retina": (1411, 1411),
    "microaneurysms": (102, 102),
    "shepp_logan": (400, 400),
    "astronaut": (512, 512),
    "grass": (512, 512),
    "gravel": (512, 512),
    "brick": (512, 512),
    "moon": (512, 512),
}


def test_image_names():
    assert set(IMAGE_NAMES) == set(EXPECTED_SHAPES)


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPES))
def test_load_image(name):
    image = load_image(name)
    assert image.shape == EXPECTED_SHAPES[name] and image.dtype == np.float64
    assert 0.0 <= image.min() < image.max() <= 1.0
    image[...] = -1.0  # a copy: the cache is unharmed
    again = load_image(name)
    assert again.min() >= 0.0
    as_bytes = load_image(name, as_float=False)
    assert as_bytes.dtype == np.uint8 and as_bytes.shape == again.shape
    np.testing.assert_allclose(as_bytes / 255.0, again, atol=0.5 / 255 + 1e-12)


def test_camera_is_skimage_camera_scaled():
    np.testing.assert_allclose(load_image("camera"), skimage.data.camera() / 255.0)
    np.testing.assert_array_equal(load_image("camera", as_float=False), skimage.data.camera())


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: load_image("lena"),
            ValueError,
            r"name: got 'lena'; expected one of 'camera', 'coins', 'retina'",
        ),
        (lambda: load_image("camera", as_float=1), TypeError, r"as_float: got 1; expected True or False"),
        (lambda: load_digits(as_nchw="yes"), TypeError, r"as_nchw: got 'yes'; expected True or False"),
    ],
)
def test_loader_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- faces and digits ----------------------------------------------------------------------------


def test_load_faces():
    images, labels = load_faces()
    assert images.shape == (200, 25, 25) and images.dtype == np.float64
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(labels, [1] * 100 + [0] * 100)
    assert labels.dtype == np.int64
    assert "100 first images are faces" in skimage.data.lfw_subset.__doc__
    images[...] = 5.0
    labels[...] = 7
    images_again, labels_again = load_faces()
    assert images_again.max() <= 1.0 and labels_again.sum() == 100


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.shape == (1797,) and y.dtype == np.int64 and set(y.tolist()) == set(range(10))
    reference = sklearn.datasets.load_digits()
    np.testing.assert_array_equal(X[:, 0] * 16.0, reference.images)
    np.testing.assert_array_equal(y, reference.target)
    flat, _ = load_digits(as_nchw=False)
    assert flat.shape == (1797, 8, 8)
    X[...] = -1.0
    assert load_digits()[0].min() == 0.0


def test_medical_slices_from_pydicom():
    from conv_lib.datasets import load_medical_slice

    ct, spacing = load_medical_slice("ct")
    assert ct.shape == (128, 128) and ct.dtype == np.float64
    assert -1100 < ct.min() < -800 and ct.max() > 500  # air in the lungs, bone: Hounsfield units
    assert spacing == pytest.approx((0.661468, 0.661468))
    ct[0, 0] = 1e9  # a copy: the next call is unchanged
    assert load_medical_slice("ct")[0][0, 0] != 1e9
    mr, _ = load_medical_slice("mr")
    assert mr.shape == (64, 64)
    with pytest.raises(ValueError, match="name: got 'xray'"):
        load_medical_slice("xray")
