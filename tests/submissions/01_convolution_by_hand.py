"""Wrong submissions of assignment 1 (see README.md)."""

SUBMISSIONS = {
    # convolve2d forgets to flip the kernel: it computes cross-correlation.
    "not_flipped": {
        "edits": {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]},
        "fails": ["test_convolve2d_valid", "test_convolve2d_same_full", "test_same_under_flip"],
        "hint": "you computed cross-correlation",
    },
    # One window too few along each axis: range(H - kH) instead of range(H - kH + 1).
    "off_by_one": {
        "edits": {
            "correlate2d": [
                (
                    "out_h, out_w = image.shape[0] - kh + 1, image.shape[1] - kw + 1",
                    "out_h, out_w = image.shape[0] - kh, image.shape[1] - kw",
                )
            ]
        },
        "fails": [
            "test_correlate2d_valid",
            "test_correlate2d_same_full",
            "test_convolve2d_valid",
            "test_convolve2d_same_full",
        ],
        "hint": "off-by-one window count",
    },
    # output_size rounds up instead of down.
    "ceil": {
        "edits": {
            "output_size": [
                (
                    "return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1",
                    "return -(-(n + 2 * padding - dilation * (kernel - 1) - 1) // stride) + 1",
                )
            ]
        },
        "fails": ["test_output_size"],
        "hint": "you rounded up (ceil)",
    },
    # zero_pad pads only the top and the left.
    "pad_one_side": {
        "edits": {"zero_pad": [("(h + 2 * ph, w + 2 * pw)", "(h + ph, w + pw)")]},
        "fails": ["test_zero_pad", "test_correlate2d_same_full", "test_convolve2d_same_full"],
        "hint": "pad both sides",
    },
    # correlate2d calls scipy: every test of correlate2d and convolve2d (which calls it) scores zero.
    "uses_scipy": {
        "edits": {
            "correlate2d": [
                (
                    "    ### BEGIN SOLUTION\n",
                    "    ### BEGIN SOLUTION\n    from scipy import signal\n"
                    "    return signal.correlate2d(image, kernel, mode)\n",
                )
            ]
        },
        # The sandbox has no scipy: the cell that computes same_under_flip with it fails too.
        "fails": [
            "test_correlate2d_valid",
            "test_correlate2d_same_full",
            "test_convolve2d_valid",
            "test_convolve2d_same_full",
            "test_same_under_flip",
        ],
        "hint": "No module named",
    },
    # 'same' cropped from (kH - 1) // 2: right for odd kernels only.
    "same_centre": {
        "edits": {
            "correlate2d": [
                (
                    "return full[kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]",
                    "return full[(kh - 1) // 2:(kh - 1) // 2 + h, (kw - 1) // 2:(kw - 1) // 2 + w]",
                )
            ]
        },
        "fails": ["test_correlate2d_same_full"],
        "hint": "centred the other way",
    },
}
