"""Wrong submissions of assignment 2 (see README.md)."""

SUBMISSIONS = {
    # The stride is ignored everywhere: a stride-1 output.
    "stride_ignored": {
        "edits": {
            "conv2d": [
                ("// sh + 1", "+ 1"),
                ("// sw + 1", "+ 1"),
                ("sh * (out_h - 1) + 1, sh)", "out_h)"),
                ("sw * (out_w - 1) + 1, sw)", "out_w)"),
            ]
        },
        "fails": ["test_conv2d_stride_padding"],
        "hint": "move the window by the stride",
    },
    # The kernel is flipped (a convolution, not the layer's cross-correlation).
    "flipped": {
        "edits": {"conv2d": [("weight[:, :, m, q]", "weight[:, :, kh - 1 - m, kw - 1 - q]")]},
        "fails": [
            "test_conv2d_basic",
            "test_conv2d_channels",
            "test_conv2d_stride_padding",
            "test_conv2d_dilation",
        ],
        "hint": "is cross-correlation: do not flip",
    },
    # The bias is never added.
    "no_bias": {
        "edits": {"conv2d": [("out += np.asarray(bias, dtype=out.dtype).reshape(1, -1, 1, 1)", "pass")]},
        "fails": ["test_conv2d_channels"],
        "hint": "add bias[c_out]",
    },
    # Dilation ignored (kernel taps always adjacent).
    "no_dilation": {
        "edits": {
            "conv2d": [
                ("dh * (kh - 1)", "(kh - 1)"),
                ("dw * (kw - 1)", "(kw - 1)"),
                ("m * dh", "m"),
                ("q * dw", "q"),
            ]
        },
        "fails": ["test_conv2d_dilation"],
        "hint": "dilation ignored",
    },
    # Pooling with stride=None uses stride 1 instead of the kernel size.
    "pool_stride_one": {
        "edits": {
            "pooling": [
                (
                    "sh, sw = (kh, kw) if stride is None else pair(stride)",
                    "sh, sw = (1, 1) if stride is None else pair(stride)",
                )
            ]
        },
        "fails": ["test_max_pool2d", "test_avg_pool2d"],
        "hint": "stride=None means stride = kernel_size",
    },
    # Stride (sH, sW) used as (sW, sH).
    "stride_swapped": {
        "edits": {
            "conv2d": [
                ("(sh, sw), (ph, pw), (dh, dw) = pair(stride)", "(sw, sh), (ph, pw), (dh, dw) = pair(stride)")
            ]
        },
        "fails": ["test_conv2d_stride_padding"],
        "hint": "sH along H (rows)",
    },
}
