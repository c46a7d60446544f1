"""Grading for the course's assignments: the checks the instructor's test cells call.

Instructor side only: this package is never bound into the grading sandbox, and
conv_lib (the students' library) knows nothing of it. Modules, by job:

``compare``
    :class:`GradingError`, :class:`Case` (one call of a student's function),
    :class:`Diagnosis` (a known mistake, named only when no failing case contradicts it),
    :class:`DtypeRule` (the dtype a result must keep), :func:`compare_arrays`,
    :func:`format_value` (numbers as a student reads them).
``context``
    :func:`grading_context` (one submission, the instructor secret, a per-submission
    cache) and :func:`hidden_rng` (the secret generator of hidden cases).
``cases``
    Fixed visible cases and hidden case generators.
``diagnoses``
    The known-bug variants and their hints.
``checks``
    ``check_*``: compare with conv_lib and explain (assignments 1 to 4).
``accuracy``
    Assignment 4's network: its gradients (``check_loss_and_grads``, against numeric
    derivatives of the student's own loss) and its accuracy, judged by the grader on test
    digits with secret labels.

A test cell reads, for example::

    from course.grading import check_zero_pad

    check_zero_pad(zero_pad)
    ### BEGIN HIDDEN TESTS
    check_zero_pad(zero_pad, hidden=True)
    ### END HIDDEN TESTS
"""

from course.grading.accuracy import (
    check_accuracy,
    check_loss_and_grads,
    check_validation_accuracy,
    digits_split,
    secret_relabelling,
)
from course.grading.cases import KERNEL_CANDIDATES
from course.grading.checks import (
    check_avg_pool2d,
    check_avg_pool2d_backward,
    check_conv2d,
    check_conv2d_backward,
    check_convolve2d,
    check_correlate2d,
    check_detect_edges,
    check_edge_magnitude,
    check_gradient_error,
    check_max_pool2d,
    check_max_pool2d_backward,
    check_numeric_gradient,
    check_output_size,
    check_param_counts,
    check_pieces,
    check_softmax_cross_entropy,
    check_symmetric_kernels,
    check_window_value,
    check_zero_pad,
)
from course.grading.compare import Case, Diagnosis, DtypeRule, GradingError, compare_arrays, format_value
from course.grading.context import GradingContext, current_context, grading_context, hidden_rng
from course.grading.diagnoses import diagnose_conv_bug

__all__ = [
    "KERNEL_CANDIDATES",
    "Case",
    "Diagnosis",
    "DtypeRule",
    "GradingContext",
    "GradingError",
    "check_accuracy",
    "check_avg_pool2d",
    "check_avg_pool2d_backward",
    "check_conv2d",
    "check_conv2d_backward",
    "check_convolve2d",
    "check_correlate2d",
    "check_detect_edges",
    "check_edge_magnitude",
    "check_gradient_error",
    "check_loss_and_grads",
    "check_max_pool2d",
    "check_max_pool2d_backward",
    "check_numeric_gradient",
    "check_output_size",
    "check_param_counts",
    "check_pieces",
    "check_softmax_cross_entropy",
    "check_symmetric_kernels",
    "check_validation_accuracy",
    "check_window_value",
    "check_zero_pad",
    "compare_arrays",
    "current_context",
    "diagnose_conv_bug",
    "format_value",
    "digits_split",
    "grading_context",
    "hidden_rng",
    "secret_relabelling",
]
