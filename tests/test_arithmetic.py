"""Convolution arithmetic: sizes, counts and receptive fields against real convolutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conv_lib import (
    ReceptiveField,
    conv2d_macs,
    conv2d_param_count,
    correlate2d_loops,
    dense_macs,
    dense_param_count,
    output_size,
    receptive_field,
    transposed_output_size,
    walk_windows,
)

# --- output_size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "d", "expected"),
    [
        (5, 3, 1, 0, 1, 3),  # Dumoulin & Visin, figure 2.1: no padding, unit strides
        (5, 4, 1, 2, 1, 6),  # figure 2.2: arbitrary padding
        (5, 3, 1, 1, 1, 5),  # figure 2.3: half ("same") padding
        (5, 3, 1, 2, 1, 7),  # figure 2.4: full padding
        (5, 3, 2, 0, 1, 2),  # figure 2.6: no padding, strides
        (5, 3, 2, 1, 1, 3),  # figure 2.7: padding and strides
        (6, 3, 2, 1, 1, 3),  # figure 2.8: padding and strides, odd
        (7, 3, 1, 0, 2, 3),  # figure 5.1: dilated
    ],
)
def test_output_size_known_values(n, k, s, p, d, expected):
    assert output_size(n, k, stride=s, padding=p, dilation=d) == expected


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3)
)
def test_output_size_equals_loops_output_length(n, k, s, p, d):
    image, kernel = np.ones((1, n)), np.ones((1, k))
    if d * (k - 1) + 1 > n + 2 * p:
        with pytest.raises(ValueError, match=r"^kernel: got"):
            output_size(n, k, s, p, d)
        with pytest.raises(ValueError, match=r"^kernel: got"):
            correlate2d_loops(image, kernel, stride=(1, s), padding=(0, p), dilation=(1, d))
        return
    out = correlate2d_loops(image, kernel, stride=(1, s), padding=(0, p), dilation=(1, d))
    assert output_size(n, k, s, p, d) == out.shape[1]


def test_output_size_matches_torch_conv2d():
    x = torch.zeros(1, 1, 11, 9)
    for k, s, p, d in [(3, 2, 1, 1), (4, 3, 0, 2), (1, 1, 2, 1), (5, 1, 2, 2)]:
        out = torch.nn.functional.conv2d(x, torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
        assert out.shape[2:] == (output_size(11, k, s, p, d), output_size(9, k, s, p, d))


# --- transposed_output_size ---------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 8),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    d=st.integers(1, 3),
    data=st.data(),
)
def test_transposed_output_size_matches_torch(n, k, s, p, d, data):
    output_padding = data.draw(st.integers(0, max(s, d) - 1))
    expected = (n - 1) * s - 2 * p + d * (k - 1) + output_padding + 1
    assume(expected >= 1)
    out = torch.nn.functional.conv_transpose2d(
        torch.zeros(1, 1, n, 1),
        torch.zeros(1, 1, k, 1),
        stride=(s, 1),
        padding=(p, 0),
        output_padding=(output_padding, 0),
        dilation=(d, 1),
    )
    assert transposed_output_size(n, k, s, p, output_padding, d) == out.shape[2] == expected


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 20), k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2)
)
def test_transposed_output_size_undoes_output_size(n, k, s, p, d):
    extent = d * (k - 1) + 1
    assume(extent <= n + 2 * p)
    m = output_size(n, k, s, p, d)
    left_over = (n + 2 * p - extent) % s  # input pixels the strided convolution never reached
    assume(left_over < max(s, d))
    assert transposed_output_size(m, k, s, p, output_padding=left_over, dilation=d) == n


# --- parameter counts and multiply-adds -------------------------------------------------------


@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "bias", "groups"),
    [
        (1, 1, 3, True, 1),
        (3, 16, 3, True, 1),
        (3, 16, (5, 3), False, 1),
        (8, 16, 3, True, 4),
        (8, 8, 3, False, 8),
        (6, 4, (1, 7), True, 2),
    ],
)
def test_conv2d_param_count_matches_torch(c_in, c_out, k, bias, groups):
    layer = torch.nn.Conv2d(c_in, c_out, k, bias=bias, groups=groups)
    assert conv2d_param_count(c_in, c_out, k, bias=bias, groups=groups) == sum(
        p.numel() for p in layer.parameters()
    )


@pytest.mark.parametrize(("n_in", "n_out", "bias"), [(1, 1, True), (784, 10, True), (75, 3, False)])
def test_dense_param_count_matches_torch(n_in, n_out, bias):
    layer = torch.nn.Linear(n_in, n_out, bias=bias)
    assert dense_param_count(n_in, n_out, bias=bias) == sum(p.numel() for p in layer.parameters())


def test_parameter_sharing_in_numbers():
    # a 3x3 convolution on a 32x32 RGB image versus a dense layer producing as many outputs
    assert conv2d_param_count(3, 16, 3) == 16 * 3 * 9 + 16 == 448
    assert dense_param_count(3 * 32 * 32, 16 * 30 * 30) == 3072 * 14400 + 14400


def test_conv2d_macs_counts_the_products_of_the_walk():
    image, kernel = np.zeros((9, 7)), np.zeros((3, 2))
    walk = walk_windows(image, kernel, stride=2, padding=1)
    products = sum(step.products.size for step in walk)
    assert conv2d_macs(1, 1, (3, 2), walk.output_shape) == products
    # every output channel repeats that for every input channel (of its group)
    assert conv2d_macs(4, 6, (3, 2), walk.output_shape) == 6 * 4 * products
    assert conv2d_macs(4, 6, (3, 2), walk.output_shape, groups=2) == 6 * 2 * products


def test_macs_known_values():
    assert conv2d_macs(3, 16, 3, 32) == 16 * 32 * 32 * 3 * 9 == 442_368
    assert dense_macs(784, 10) == 7840


# --- receptive_field -------------------------------------------------------------------------


def test_receptive_field_known_stacks():
    # three 3x3 convolutions see 7x7 pixels, like one 7x7 (the VGG argument)
    assert [r.size for r in receptive_field([3, 3, 3])] == [3, 5, 7]
    # conv 3 / pool 2 stride 2 / conv 3: jumps 1, 2, 2
    fields = receptive_field([(3, 1), (2, 2), (3, 1)])
    assert fields == [ReceptiveField(3, 1, 1.0), ReceptiveField(4, 2, 1.5), ReceptiveField(8, 2, 3.5)]
    # dilations 1, 2, 4 grow the field exponentially (Yu & Koltun)
    assert [r.size for r in receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])] == [3, 7, 15]
    # dicts and padding: padding 1 centres unit 0 on pixel 0
    assert receptive_field([{"kernel": 3, "padding": 1}]) == [ReceptiveField(3, 1, 0.0)]
    assert receptive_field([(3, 2, 1, 1)]) == receptive_field([{"kernel": 3, "stride": 2, "padding": 1}])


layer_spec = st.tuples(st.integers(1, 4), st.integers(1, 2), st.integers(1, 2), st.integers(0, 2))


@settings(max_examples=80, deadline=None)
@given(layers=st.lists(layer_spec, min_size=1, max_size=3))
def test_receptive_field_matches_brute_force(layers):
    """Push every one-hot input through the real stack (all-ones kernels) and see who lights up."""
    n = 64
    signal = torch.eye(n, dtype=torch.float64)[:, None, :]  # (n impulses, 1 channel, n pixels)
    fields = receptive_field(layers)
    for (k, s, d, p), field in zip(layers, fields, strict=True):
        assume(d * (k - 1) + 1 <= signal.shape[2] + 2 * p)
        signal = torch.nn.functional.conv1d(
            signal, torch.ones(1, 1, k, dtype=torch.float64), stride=s, padding=p, dilation=d
        )
        influence = signal[:, 0, :].numpy() > 0  # influence[m, o]: input m reaches output o
        half = (field.size - 1) / 2
        checked = 0
        for o in range(influence.shape[1]):
            centre = field.start + o * field.jump
            low, high = centre - half, centre + half
            if low < 0 or high > n - 1:
                continue  # part of this unit's field is padding
            inputs = np.flatnonzero(influence[:, o])
            assert (inputs.min(), inputs.max()) == (low, high)
            checked += 1
        assert checked > 0


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: output_size(0, 3), ValueError, r"n: got 0; expected an integer >= 1"),
        (lambda: output_size(5, 0), ValueError, r"kernel: got 0; expected an integer >= 1"),
        (lambda: output_size(5, 3, stride=0), ValueError, r"stride: got 0"),
        (lambda: output_size(5, 3, padding=-1), ValueError, r"padding: got -1; expected an integer >= 0"),
        (lambda: output_size(5, 3, dilation=0), ValueError, r"dilation: got 0"),
        (lambda: output_size(5.0, 3), TypeError, r"n: got 5.0; expected an integer"),
        (
            lambda: output_size(3, 5),
            ValueError,
            r"kernel: got 5; expected at most the padded input length n \+ 2\*padding = 3 \+ 2\*0 = 3",
        ),
        (
            lambda: output_size(5, 3, padding=0, dilation=3),
            ValueError,
            r"kernel: got 3 \(spanning 7 pixels with dilation 3\); expected at most",
        ),
        (
            lambda: transposed_output_size(4, 3, stride=2, output_padding=2),
            ValueError,
            r"output_padding: got 2; expected an integer smaller than stride \(2\) or dilation \(1\)",
        ),
        (
            lambda: transposed_output_size(1, 1, padding=1),
            ValueError,
            r"padding: got 1; expected a value leaving a positive output length \(this one gives -1\)",
        ),
        (lambda: conv2d_param_count(3, 16, 0), ValueError, r"kernel_size: got 0"),
        (
            lambda: conv2d_param_count(3, 16, 3, groups=2),
            ValueError,
            r"groups: got 2; expected a divisor of the input channels \(3\)",
        ),
        (lambda: conv2d_param_count(3, 16, 3, bias=1), TypeError, r"bias: got 1; expected True or False"),
        (lambda: conv2d_param_count(0, 16, 3), ValueError, r"in_channels: got 0"),
        (lambda: dense_param_count(10, 0), ValueError, r"out_features: got 0"),
        (lambda: dense_param_count(10, 2, bias="yes"), TypeError, r"bias: got 'yes'"),
        (lambda: conv2d_macs(3, 16, 3, (0, 4)), ValueError, r"output_hw: got \(0, 4\)"),
        (
            lambda: conv2d_macs(4, 6, 3, 8, groups=4),
            ValueError,
            r"groups: got 4; expected a divisor of the output",
        ),
        (lambda: dense_macs(-1, 3), ValueError, r"in_features: got -1"),
        (lambda: receptive_field([]), ValueError, r"layers: got an empty list"),
        (lambda: receptive_field(3), TypeError, r"layers: got 3; expected a list of layers"),
        (lambda: receptive_field([3, (3, 0)]), ValueError, r"layers\[1\] stride: got 0"),
        (
            lambda: receptive_field([(3, 1, 1, 1, 1)]),
            ValueError,
            r"layers\[0\]: got \(3, 1, 1, 1, 1\); expected",
        ),
        (lambda: receptive_field([{"kernal": 3}]), ValueError, r"layers\[0\]: got unknown keys \['kernal'\]"),
        (
            lambda: receptive_field([{"stride": 2}]),
            ValueError,
            r"layers\[0\]: got .*; expected a 'kernel' entry",
        ),
        (lambda: receptive_field(["3x3"]), TypeError, r"layers\[0\]: got '3x3'"),
        (lambda: receptive_field([(3, 1, 1, -1)]), ValueError, r"layers\[0\] padding: got -1"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
