"""Wall-clock timing used by chapters and benchmarks (never by tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from conv_lib.validation import check_positive_int

__all__ = ["block_times", "median_time"]


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


def block_times(
    candidates: dict[str, Callable[[], Any]],
    rounds: int = 7,
    block_seconds: float = 0.25,
    pause: float = 0.2,
    min_calls: int = 2,
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, timed over blocks of back-to-back calls.

    Each candidate is called once to warm up, and once more to size its block
    (``block_seconds`` of calls, at least ``min_calls``). Then, in each of ``rounds``
    rounds, the candidates take turns (the order rotated every round): sleep ``pause``
    seconds, run one block, record the block's time per call. Take the median.

    Why blocks after a pause: a library's worker threads keep spinning for a while
    after each call, and a single call timed after a pause measures mostly their
    wake-up; a block measures throughput, and the pause keeps one library's spinning
    threads from stealing a core from the next. Alternating the blocks spreads other
    processes' load over all candidates alike.

    Parameters
    ----------
    candidates : dict of name -> callable taking no arguments
    rounds : int
        Blocks per candidate.
    block_seconds, pause : float
        Target length of a block, and the sleep before each block, in seconds.
    min_calls : int
        Fewest calls in a block.

    Returns
    -------
    dict of name -> list of float
        ``rounds`` times per call, in seconds, for each candidate.
    """
    rounds = check_positive_int("rounds", rounds)
    min_calls = check_positive_int("min_calls", min_calls)
    calls = {}
    for name, fn in candidates.items():
        fn()
        start = time.perf_counter()
        fn()
        calls[name] = max(min_calls, int(block_seconds / max(time.perf_counter() - start, 1e-9)))
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rnd in range(rounds):
        for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
            fn = candidates[name]
            time.sleep(pause)
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            times[name].append((time.perf_counter() - start) / calls[name])
    return times
