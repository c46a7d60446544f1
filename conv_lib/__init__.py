"""conv_lib: the course's one implementation of convolution and its relatives.

Chapters and autograders import from here; nothing is re-implemented elsewhere.

2-D signal processing (scipy.signal semantics)
    correlate2d, convolve2d
Teaching reference (the one-page summary's five steps, one window at a time)
    correlate2d_loops, convolve2d_loops, zero_pad, walk_windows, WindowStep
Deep-learning layers, NCHW (torch.nn.functional semantics)
    conv2d, conv2d_backward, conv_transpose2d,
    max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward
Arithmetic
    output_size, transposed_output_size, conv2d_param_count, dense_param_count,
    conv2d_macs, dense_macs, receptive_field, conv_transpose2d_macs,
    depthwise_separable_param_count, depthwise_separable_macs
Kernels and data
    get_kernel, gaussian_kernel, KERNEL_NAMES, load_image, load_faces, load_digits, load_mnist,
    SUMMARY_IMAGE, SUMMARY_KERNEL
Algorithms and gradients
    METHODS, LAYER_METHODS, choose_method, im2col, col2im, set_memory_budget, get_memory_budget,
    release_workspaces,
    winograd_matrices, winograd_1d (Winograd's minimal filtering, conv_lib.winograd),
    numeric_gradient, check_gradient
"""

from conv_lib.validation import as_array, as_pair  # noqa: F401

# --- section: 2-D, teaching reference, arithmetic, kernels, data (owner: lib-2d) ---
# isort: split
from conv_lib.arithmetic import (  # noqa: F401
    ReceptiveField,
    conv2d_macs,
    conv2d_param_count,
    conv_transpose2d_macs,
    dense_macs,
    dense_param_count,
    depthwise_separable_macs,
    depthwise_separable_param_count,
    output_size,
    receptive_field,
    transposed_output_size,
)
from conv_lib.datasets import (  # noqa: F401
    IMAGE_NAMES,
    SUMMARY_IMAGE,
    SUMMARY_KERNEL,
    load_digits,
    load_faces,
    load_image,
    load_mnist,
)
from conv_lib.gradcheck import GradCheckResult, check_gradient, numeric_gradient  # noqa: F401
from conv_lib.kernels import KERNEL_NAMES, gaussian_kernel, get_kernel  # noqa: F401
from conv_lib.stepwise import (  # noqa: F401
    ConvolutionWalk,
    WindowStep,
    convolve2d_loops,
    correlate2d_loops,
    walk_windows,
    zero_pad,
)

# isort: split
# --- end section lib-2d ---

# --- section: NCHW layers, pooling, algorithms, gradcheck (owner: lib-nchw) ---
from conv_lib.algorithms import LAYER_METHODS, METHODS, choose_method  # noqa: F401
from conv_lib.im2col_gemm import col2im, im2col  # noqa: F401
from conv_lib.conv import conv2d, conv2d_backward, conv_transpose2d  # noqa: F401
from conv_lib.pooling import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward  # noqa: F401
from conv_lib.signal2d import convolve2d, correlate2d  # noqa: F401
from conv_lib.winograd import winograd_1d, winograd_matrices  # noqa: F401
from conv_lib.workspace import get_memory_budget, release_workspaces, set_memory_budget  # noqa: F401
# --- end section lib-nchw ---

# --- section: chapters' additions (owner: book helpers) ---
from conv_lib.timing import block_times, median_time  # noqa: F401
# isort: split
# why-convolution chapters (advantages, disadvantages, applications)
from conv_lib.features import (  # noqa: F401
    gaussian_blur,
    gradient_features,
    hog_like,
    line_kernel,
    log_kernel,
    max_filter_response,
)
from conv_lib.matching import (  # noqa: F401
    Detection,
    box_iou,
    detect_template,
    detect_template_multiscale,
    find_peaks,
    non_max_suppression,
    normalized_cross_correlation,
)
from conv_lib.network import (  # noqa: F401
    Adam,
    DenseNet,
    SGDMomentum,
    SmallCNN,
    TrainHistory,
    accuracy,
    affine_backward,
    affine_forward,
    conv_backward,
    conv_forward,
    max_pool_backward,
    max_pool_forward,
    param_count,
    predict,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
    train,
)
from conv_lib.cnn import ConvBlock, ConvNet, dense_width_for_budget  # noqa: F401
# isort: split
# --- end section book ---

# Figures need matplotlib, which graders and most library users never touch: the names of
# conv_lib.plotting are imported on first use (PEP 562), so `import conv_lib` stays light.
_PLOTTING_NAMES = frozenset(
    {
        "animation_html",
        "draw_grid",
        "feature_map_so_far",
        "format_number",
        "jshtml_frame_count",
        "plot_conv_geometry",
        "plot_kernel_flip",
        "plot_window_step",
        "sliding_window_animation",
        "use_course_style",
        "window_cells",
    }
)


def __getattr__(name: str):
    if name in _PLOTTING_NAMES:
        from conv_lib import plotting

        return getattr(plotting, name)
    raise AttributeError(f"module 'conv_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _PLOTTING_NAMES)


__version__ = "0.1.0"
