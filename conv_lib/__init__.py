"""conv_lib: the course's one implementation of convolution and its relatives.

Chapters and autograders import from here; nothing is re-implemented elsewhere.

2-D signal processing (scipy.signal semantics)
    correlate2d, convolve2d
Teaching reference (the seed's five steps, one window at a time)
    correlate2d_loops, convolve2d_loops, zero_pad, walk_windows, WindowStep
Deep-learning layers, NCHW (torch.nn.functional semantics)
    conv2d, conv2d_backward, conv_transpose2d,
    max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward
Arithmetic
    output_size, transposed_output_size, conv2d_param_count, dense_param_count,
    conv2d_macs, dense_macs, receptive_field
Kernels and data
    get_kernel, gaussian_kernel, KERNEL_NAMES, load_image, load_faces, load_digits,
    SEED_IMAGE, SEED_KERNEL
Algorithms and gradients
    METHODS, choose_method, im2col, col2im, set_memory_budget, get_memory_budget,
    numeric_gradient, check_gradient
"""

from conv_lib.validation import as_array, as_pair  # noqa: F401

# --- section: 2-D, teaching reference, arithmetic, kernels, data (owner: lib-2d) ---
# --- end section lib-2d ---

# --- section: NCHW layers, pooling, algorithms, gradcheck (owner: lib-nchw) ---
# --- end section lib-nchw ---

# --- section: chapters' additions (owner: book helpers) ---
from conv_lib.plotting import use_course_style  # noqa: F401
from conv_lib.timing import median_time  # noqa: F401
# --- end section book ---

# --- section: grading helpers (owner: assignments) ---
# --- end section assignments ---

__version__ = "0.1.0"
