"""Wrong submissions of assignment 4 (see README.md)."""

SUBMISSIONS = {
    # Only the x direction in the edge magnitude.
    "gx_only": {
        "edits": {"edges": [("return np.sqrt(g[0] ** 2 + g[1] ** 2)", "return np.abs(g[0])")]},
        "fails": ["test_edge_magnitude", "test_detect_edges"],
        "hint": "combine both directions",
    },
    # No padding: the edge map shrinks by 2 pixels.
    "edges_valid": {
        "edits": {"edges": [("g = conv2d(x, kernels, padding=1)[0]", "g = conv2d(x, kernels)[0]")]},
        "fails": ["test_edge_magnitude", "test_detect_edges"],
        "hint": "keep the image",
    },
    # Softmax without subtracting the maximum overflows on large scores.
    "softmax_overflow": {
        "edits": {"softmax": [("shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits")]},
        "fails": ["test_softmax"],
        "hint": "Subtract each row",
    },
    # Parameter count without the biases.
    "params_no_bias": {
        "edits": {"param_counts": [("return c_out * c_in * k * k + c_out", "return c_out * c_in * k * k")]},
        "fails": ["test_param_counts"],
        "hint": "the bias adds one parameter per output channel",
    },
    # Far too little training (train's defaults): the network does not reach the accuracies.
    "undertrained": {
        "edits": {
            "cnn": [
                (
                    "def train(X, y, epochs=8, batch_size=32, lr=0.2, seed=0):",
                    "def train(X, y, epochs=1, batch_size=32, lr=0.002, seed=0):",
                )
            ]
        },
        "fails": ["test_accuracy_085", "test_accuracy_093"],
        "hint": "is below 0.85",
    },
    # The pasted conv2d calls conv_lib: the layers, the edges and the network score zero.
    "uses_conv_lib": {
        "edits": {
            "pieces": [
                (
                    "def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n",
                    "def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n"
                    "    import conv_lib\n"
                    "    return conv_lib.conv2d(x, weight, bias, stride=stride, padding=padding, "
                    "dilation=dilation)\n\n\n"
                    "def _unused_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n",
                )
            ]
        },
        "fails": [
            "test_pieces",
            "test_edge_magnitude",
            "test_detect_edges",
            "test_loss_and_grads",
            "test_accuracy_085",
            "test_accuracy_093",
        ],
        "hint": "No module named",
    },
}
