"""Wrong submissions of assignment 3 (see README.md)."""

SUBMISSIONS = {
    # The bias gradient is summed over the batch only.
    "db_batch_only": {
        "edits": {
            "conv2d_backward": [
                ("grad_bias = grad_out.sum(axis=(0, 2, 3))", "grad_bias = grad_out.sum(axis=0)")
            ]
        },
        "fails": ["test_conv2d_backward_bias"],
        "hint": "the bias touches every output pixel",
    },
    # The padding is cut off with [p:-p], which is empty when p == 0.
    "crop_minus_zero": {
        "edits": {
            "conv2d_backward": [("grad_xp[:, :, ph:ph + h, pw:pw + w]", "grad_xp[:, :, ph:-ph, pw:-pw]")]
        },
        "fails": ["test_conv2d_backward_input", "test_conv2d_backward_strided"],
        "hint": "-0 == 0",
    },
    # Max-pool backward sends the gradient to every tied maximum.
    "ties_to_all": {
        "edits": {
            "pool_backward": [
                (
                    "            window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, c, -1)\n"
                    "            m, q = np.divmod(window.argmax(axis=2), kw)\n"
                    "            grad_x[b, ch, i * sh + m, j * sw + q] += grad_out[:, :, i, j]\n",
                    "            window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]\n"
                    "            mask = window == window.max(axis=(2, 3), keepdims=True)\n"
                    "            grad_x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += (\n"
                    "                mask * grad_out[:, :, i:i + 1, j:j + 1])\n",
                )
            ]
        },
        # the visible cases have integer images: the basic case has ties as well
        "fails": ["test_max_pool2d_backward", "test_max_pool2d_backward_overlap"],
        "hint": "only the FIRST maximum",
    },
    # Overlapping max-pool windows overwrite each other's gradient.
    "overlap_overwrite": {
        "edits": {
            "pool_backward": [
                (
                    "grad_x[b, ch, i * sh + m, j * sw + q] += grad_out[:, :, i, j]",
                    "grad_x[b, ch, i * sh + m, j * sw + q] = grad_out[:, :, i, j]",
                )
            ]
        },
        "fails": ["test_max_pool2d_backward_overlap"],
        "hint": "receives the SUM of their gradients",
    },
    # One-sided (forward) difference in the numeric gradient.
    "forward_difference": {
        "edits": {
            "numeric_gradient": [
                (
                    "        x[k] = old - eps\n        f_minus = f(x)\n",
                    "        x[k] = old\n        f_minus = f(x)\n",
                ),
                ("grad[k] = (f_plus - f_minus) / (2 * eps)", "grad[k] = (f_plus - f_minus) / eps"),
            ]
        },
        # gradient_error calls the student's numeric_gradient: its value is off as well
        "fails": ["test_numeric_gradient", "test_gradient_error"],
        "hint": "use the central difference",
    },
    # Average-pool backward forgets to divide by the window size.
    "avg_not_divided": {
        "edits": {
            "pool_backward": [
                ("grad_out[:, :, i:i + 1, j:j + 1] / (kh * kw)", "grad_out[:, :, i:i + 1, j:j + 1]")
            ]
        },
        "fails": ["test_avg_pool2d_backward"],
        "hint": "grad / (kH * kW)",
    },
}
