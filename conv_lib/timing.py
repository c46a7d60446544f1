"""Wall-clock timing used by chapters and benchmarks (never by tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from conv_lib.validation import check_positive_int

__all__ = ["median_time"]


def median_time(fn: Callable[..., Any], *args: Any, repeat: int = 5, warmup: int = 1, **kwargs: Any) -> float:
    """Median wall-clock time of ``fn(*args, **kwargs)`` in seconds.

    Parameters
    ----------
    fn : callable
        The function to time.
    *args, **kwargs
        Passed to ``fn`` on every call.
    repeat : int
        Number of timed calls; the median is returned.
    warmup : int
        Untimed calls made first (caches, thread pools, FFT plans).

    Returns
    -------
    float
        Median of ``repeat`` timings, in seconds.
    """
    repeat = check_positive_int("repeat", repeat)
    warmup = check_positive_int("warmup", warmup, minimum=0)
    for _ in range(warmup):
        fn(*args, **kwargs)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
