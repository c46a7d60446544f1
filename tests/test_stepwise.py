"""The teaching reference (conv_lib.stepwise) against SciPy, PyTorch and the one-page summary's example."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conv_lib import (
    SUMMARY_IMAGE,
    SUMMARY_KERNEL,
    ConvolutionWalk,
    WindowStep,
    convolve2d_loops,
    correlate2d_loops,
    output_size,
    walk_windows,
    zero_pad,
)

# The one-page summary's example, typed as there (convolution.md, "Example (Python Implementation)").
SUMMARY_IMAGE_AS_TYPED = np.array(
    [
        [1, 2, 3, 0, 0],
        [4, 5, 6, 0, 0],
        [7, 8, 9, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
)
SUMMARY_KERNEL_AS_TYPED = np.array(
    [
        [1, 0, -1],
        [1, 0, -1],
        [1, 0, -1],
    ]
)

small_ints = st.integers(-9, 9)


@st.composite
def image_and_kernel(draw, max_side: int = 7):
    """Random small integer image and a kernel that fits in it."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    image = draw(arrays(np.int64, (h, w), elements=small_ints))
    kernel = draw(arrays(np.int64, (kh, kw), elements=small_ints))
    return image, kernel


def torch_correlate(image, kernel, stride, padding, dilation):
    out = torch.nn.functional.conv2d(
        torch.from_numpy(np.asarray(image, dtype=np.float64))[None, None],
        torch.from_numpy(np.asarray(kernel, dtype=np.float64))[None, None],
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    return out[0, 0].numpy()


# --- the one-page summary's example ------------------------------------------------------------------


def test_seed_example_equals_scipy_exactly():
    expected = scipy.signal.convolve2d(SUMMARY_IMAGE_AS_TYPED, SUMMARY_KERNEL_AS_TYPED, mode="valid")
    result = convolve2d_loops(SUMMARY_IMAGE, SUMMARY_KERNEL)
    assert result.shape == (3, 3)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(convolve2d_loops(SUMMARY_IMAGE_AS_TYPED, SUMMARY_KERNEL_AS_TYPED), expected)


def test_summary_feature_map_values_step_by_step():
    """Each walk step of the one-page summary's example gives scipy's value, with its formula."""
    expected = scipy.signal.convolve2d(SUMMARY_IMAGE_AS_TYPED, SUMMARY_KERNEL_AS_TYPED, mode="valid")
    walk = walk_windows(SUMMARY_IMAGE, SUMMARY_KERNEL, flip=True)
    assert walk.output_shape == expected.shape
    for step in walk:
        i, j = step.index
        # S(i, j) = sum_m sum_n I(m, n) K(i - m, j - n), in scipy's 'valid' indexing
        formula = sum(
            SUMMARY_IMAGE_AS_TYPED[m, n] * SUMMARY_KERNEL_AS_TYPED[i + 2 - m, j + 2 - n]
            for m in range(i, i + 3)
            for n in range(j, j + 3)
        )
        assert step.value == expected[i, j] == formula


def test_seed_explain_writes_out_the_sum():
    first = walk_windows(SUMMARY_IMAGE, SUMMARY_KERNEL, flip=True)[0]
    expected = scipy.signal.convolve2d(SUMMARY_IMAGE, SUMMARY_KERNEL, mode="valid")[0, 0]
    text = first.explain()
    assert text.startswith("out[0, 0] = 1*(-1) + 2*0 + 3*1 + ")
    assert text.endswith(f"= {expected}")


# --- equality with scipy.signal -----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(image_and_kernel())
def test_valid_equals_scipy_exactly(pair):
    image, kernel = pair
    np.testing.assert_array_equal(
        correlate2d_loops(image, kernel), scipy.signal.correlate2d(image, kernel, mode="valid")
    )
    np.testing.assert_array_equal(
        convolve2d_loops(image, kernel, padding="valid"), scipy.signal.convolve2d(image, kernel, mode="valid")
    )


@settings(max_examples=40, deadline=None)
@given(image_and_kernel(max_side=5))
def test_full_equals_scipy_exactly(pair):
    image, kernel = pair
    np.testing.assert_array_equal(
        correlate2d_loops(image, kernel, padding="full"), scipy.signal.correlate2d(image, kernel, mode="full")
    )
    np.testing.assert_array_equal(
        convolve2d_loops(image, kernel, padding="full"), scipy.signal.convolve2d(image, kernel, mode="full")
    )


@settings(max_examples=40, deadline=None)
@given(
    image=arrays(np.int64, st.tuples(st.integers(3, 6), st.integers(3, 6)), elements=small_ints),
    kernel=arrays(np.int64, st.sampled_from([(1, 1), (1, 3), (3, 1), (3, 3)]), elements=small_ints),
)
def test_same_equals_scipy_for_odd_kernels(image, kernel):
    np.testing.assert_array_equal(
        correlate2d_loops(image, kernel, padding="same"), scipy.signal.correlate2d(image, kernel, mode="same")
    )
    np.testing.assert_array_equal(
        convolve2d_loops(image, kernel, padding="same"), scipy.signal.convolve2d(image, kernel, mode="same")
    )


# --- stride, padding, dilation against PyTorch ---------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_stride_padding_dilation_match_torch(data, stride, padding, dilation):
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    h = data.draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 8))
    w = data.draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 8))
    image = data.draw(arrays(np.int64, (h, w), elements=small_ints))
    kernel = data.draw(arrays(np.int64, (kh, kw), elements=small_ints))
    result = correlate2d_loops(image, kernel, stride=stride, padding=padding, dilation=dilation)
    expected = torch_correlate(image, kernel, stride, padding, dilation)
    np.testing.assert_array_equal(result, expected)
    assert result.shape == tuple(
        output_size(n, k, s, p, d)
        for n, k, s, p, d in zip((h, w), (kh, kw), stride, padding, dilation, strict=True)
    )
    flipped = convolve2d_loops(image, kernel, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_array_equal(
        flipped, torch_correlate(image, kernel[::-1, ::-1], stride, padding, dilation)
    )


def test_float_input_close_to_torch():
    rng = np.random.default_rng(0)
    image, kernel = rng.standard_normal((9, 8)), rng.standard_normal((3, 2))
    np.testing.assert_allclose(
        correlate2d_loops(image, kernel, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        torch_correlate(image, kernel, (2, 1), (1, 2), (1, 2)),
        rtol=1e-12,
        atol=1e-12,
    )


def test_int_scalar_and_pair_arguments_agree():
    image = np.arange(49).reshape(7, 7)
    kernel = np.arange(4).reshape(2, 2)
    np.testing.assert_array_equal(
        correlate2d_loops(image, kernel, 2, 1, 2), correlate2d_loops(image, kernel, (2, 2), (1, 1), (2, 2))
    )


# --- dtypes, no side effects ---------------------------------------------------------------


def test_dtypes():
    image = np.arange(16).reshape(4, 4)
    assert correlate2d_loops(image, np.ones((2, 2), dtype=int)).dtype == np.float64
    assert correlate2d_loops(image.astype(bool), np.ones((2, 2), dtype=bool)).dtype == np.float64
    assert correlate2d_loops(image.astype(np.float32), np.ones((2, 2), np.float32)).dtype == np.float32
    assert correlate2d_loops(image.astype(np.float32), np.ones((2, 2))).dtype == np.float64


def test_inputs_are_not_modified_and_lists_work():
    image = np.arange(25.0).reshape(5, 5)
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]])
    image_before, kernel_before = image.copy(), kernel.copy()
    convolve2d_loops(image, kernel, padding=1)
    list(walk_windows(image, kernel, padding=1, flip=True))
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(kernel, kernel_before)
    np.testing.assert_array_equal(
        correlate2d_loops(image.tolist(), kernel.tolist()), correlate2d_loops(image, kernel)
    )


# --- zero_pad --------------------------------------------------------------------------------


def test_zero_pad_values_shape_dtype():
    image = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    padded = zero_pad(image, (1, 2))
    assert padded.shape == (4, 7)
    assert padded.dtype == np.int32
    np.testing.assert_array_equal(padded[1:-1, 2:-2], image)
    assert padded.sum() == image.sum()
    np.testing.assert_array_equal(zero_pad(image, 0), image)
    assert not np.shares_memory(zero_pad(image, 0), image)


def test_zero_pad_pads_only_last_two_axes():
    stack = np.ones((2, 3, 4, 5))
    assert zero_pad(stack, 1).shape == (2, 3, 6, 7)
    np.testing.assert_array_equal(zero_pad(stack, 1), np.pad(stack, ((0, 0), (0, 0), (1, 1), (1, 1))))


@pytest.mark.parametrize(
    ("image", "padding", "error", "match"),
    [
        (np.ones(3), 1, ValueError, r"image: got 1-D input of shape \(3,\); expected at least 2"),
        (np.ones((2, 2)), -1, ValueError, r"padding: got -1; expected integers >= 0"),
        (np.ones((2, 2)), (1, 2, 3), ValueError, r"padding: got \(1, 2, 3\)"),
        (np.ones((2, 2)), 1.5, TypeError, r"padding: got 1.5"),
        ("abc", 1, TypeError, r"image: got 'abc'; expected an array of numbers"),
    ],
)
def test_zero_pad_errors(image, padding, error, match):
    with pytest.raises(error, match=match):
        zero_pad(image, padding)


# --- walk_windows ----------------------------------------------------------------------------


def test_walk_steps_reproduce_the_loops():
    rng = np.random.default_rng(1)
    image = rng.integers(-5, 6, size=(7, 6))
    kernel = rng.integers(-3, 4, size=(3, 2))
    for flip in (False, True):
        walk = walk_windows(image, kernel, stride=(2, 1), padding=(1, 2), dilation=(2, 1), flip=flip)
        loops = (convolve2d_loops if flip else correlate2d_loops)(
            image, kernel, stride=(2, 1), padding=(1, 2), dilation=(2, 1)
        )
        assert isinstance(walk, ConvolutionWalk)
        assert walk.output_shape == loops.shape
        assert len(walk) == loops.size
        np.testing.assert_array_equal(walk.padded_image, zero_pad(image, (1, 2)))
        np.testing.assert_array_equal(walk.kernel, kernel[::-1, ::-1] if flip else kernel)
        np.testing.assert_array_equal(walk.feature_map(), loops)
        feature_map = np.full(walk.output_shape, np.nan)
        for count, step in enumerate(walk):
            assert isinstance(step, WindowStep)
            assert step.step == count
            assert step.index == divmod(count, walk.output_shape[1])
            i, j = step.index
            assert (step.top, step.left) == (2 * i, 1 * j)
            np.testing.assert_array_equal(step.rows, step.top + 2 * np.arange(3))
            np.testing.assert_array_equal(step.cols, step.left + np.arange(2))
            np.testing.assert_array_equal(step.window, walk.padded_image[np.ix_(step.rows, step.cols)])
            np.testing.assert_array_equal(step.kernel, walk.kernel)
            np.testing.assert_array_equal(step.products, step.window * step.kernel)
            assert step.value == step.products.sum()
            feature_map[step.index] = step.value
        np.testing.assert_array_equal(feature_map, loops)


def test_walk_is_a_reusable_sequence():
    walk = walk_windows(np.arange(16).reshape(4, 4), np.ones((2, 2)))
    assert len(walk) == 9
    assert [s.value for s in walk] == [s.value for s in walk]
    assert walk[-1].index == (2, 2)
    assert walk[4].value == walk[np.int64(4)].value
    assert [s.step for s in walk[1:7:2]] == [1, 3, 5]
    with pytest.raises(IndexError, match=r"step: got 9; expected -9 <= step < 9"):
        walk[9]
    with pytest.raises(TypeError, match=r"step: got 'a'"):
        walk["a"]
    assert "9 windows" in repr(walk)


def test_window_step_is_frozen_and_read_only():
    step = walk_windows(SUMMARY_IMAGE, SUMMARY_KERNEL)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.value = 0.0
    for arr in (step.window, step.kernel, step.products, step.rows, step.cols):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1
    walk = walk_windows(SUMMARY_IMAGE, SUMMARY_KERNEL)
    with pytest.raises(ValueError, match="read-only"):
        walk.padded_image[0, 0] = 1
    assert "value=" in repr(step)


def test_walk_validates_at_once():
    with pytest.raises(ValueError, match=r"stride: got 0"):
        walk_windows(SUMMARY_IMAGE, SUMMARY_KERNEL, stride=0)
    with pytest.raises(TypeError, match=r"flip: got 'yes'; expected True or False"):
        walk_windows(SUMMARY_IMAGE, SUMMARY_KERNEL, flip="yes")


def test_padding_modes_resolve():
    walk = walk_windows(np.ones((5, 6)), np.ones((3, 5)), padding="same")
    assert walk.padding == (1, 2) and walk.output_shape == (5, 6)
    walk = walk_windows(np.ones((5, 6)), np.ones((3, 2)), padding="full", dilation=2)
    assert walk.padding == (4, 2)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"image": np.ones(5)}, ValueError, r"image: got 1-D input of shape \(5,\); expected a 2-D array"),
        ({"kernel": np.ones((1, 2, 2))}, ValueError, r"kernel: got 3-D input .* expected a 2-D array"),
        ({"image": np.ones((0, 3))}, ValueError, r"image: got an empty array of shape \(0, 3\)"),
        ({"kernel": np.ones((2, 2), complex)}, TypeError, r"kernel: got an array of dtype complex128"),
        (
            {"kernel": np.ones((6, 2))},
            ValueError,
            r"kernel: got shape \(6, 2\); expected at most the padded image shape \(5, 5\)",
        ),
        (
            {"kernel": np.ones((3, 3)), "dilation": 3},
            ValueError,
            r"kernel: got shape \(3, 3\) \(spanning \(7, 7\) with dilation \(3, 3\)\); expected at most",
        ),
        ({"stride": 0}, ValueError, r"stride: got 0; expected positive integers"),
        ({"stride": (1, 2.0)}, TypeError, r"stride: got \(1, 2.0\); expected integers"),
        ({"dilation": -1}, ValueError, r"dilation: got -1; expected positive integers"),
        ({"padding": -2}, ValueError, r"padding: got -2; expected integers >= 0"),
        ({"padding": "bogus"}, ValueError, r"padding: got 'bogus'; expected one of 'valid', 'same', 'full'"),
        ({"padding": "same", "stride": 2}, ValueError, r"padding: got 'same' with stride \(2, 2\)"),
        (
            {"padding": "same", "kernel": np.ones((2, 3))},
            ValueError,
            r"padding: got 'same' with a kernel spanning \(2, 3\) pixels; 'same' needs an odd span",
        ),
    ],
)
@pytest.mark.parametrize("function", [correlate2d_loops, convolve2d_loops, walk_windows])
def test_errors(function, kwargs, error, match):
    arguments = {"image": np.ones((5, 5)), "kernel": np.ones((3, 3)), **kwargs}
    with pytest.raises(error, match=match):
        function(**arguments)
