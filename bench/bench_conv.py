"""Benchmark conv_lib's convolution paths against scipy and torch, in one process.

Run ``python bench/bench_conv.py`` (or ``make bench``); ``--quick`` for a short run.
A script, not a test: nothing here is asserted except that every candidate computes
the reference's answer.

* 2-D: ``correlate2d(image, kernel, mode="same")`` in float64 on 512x512 and
  2048x2048 images with 3x3, 7x7 and 31x31 kernels, against scipy.signal.correlate2d,
  scipy.signal.fftconvolve (flipped kernel) and scipy.ndimage.correlate (zero fill):
  all four compute exactly the same array for these odd kernels (checked).
* NCHW layers in float32 (torch's usual precision): forward against
  torch.nn.functional.conv2d, and backward (grad_x, grad_w, grad_b) against torch
  autograd, for each layer.

Timing: the candidates of one case are run in interleaved rounds (A, B, C, A, B, C,
... with the order rotated every round, 20 ms apart), so that load from other
processes hits all of them alike; a candidate whose time so far exceeds the per-candidate budget drops
out of later rounds. For every case: the median and the minimum time of each
implementation, the ratio of medians to the fastest reference (time / reference
time; < 1 means faster) and GFLOP/s counted as ``2 * multiply-adds of the direct
algorithm`` (so FFT paths can exceed the peak), also as a percentage of the machine's
peak (a large float32 matmul, measured first; float64 peak is about half).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.signal
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conv_lib import choose_method, conv2d, conv2d_backward, correlate2d  # noqa: E402

PEAK = {"gflops": float("nan")}


# Pause between two timed calls. torch's OpenMP threads keep spinning for a few ms
# after each call (libgomp's default spin before sleeping) and take both cores from
# whatever runs next: without a pause the candidate that follows torch is ~5 ms slower.
GAP_S = 0.02


def interleaved_times(
    cands: dict[str, Callable[[], object]], repeats: int, budget_s: float = 15.0
) -> dict[str, list[float]]:
    """Wall times of every candidate, measured in interleaved rounds after one warm-up
    call each; the order is rotated every round and calls are separated by
    :data:`GAP_S`. A candidate stops once its total time exceeds ``budget_s`` (it
    keeps at least one measurement)."""
    names = list(cands)
    for fn in cands.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rnd in range(repeats):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for name in order:
            if times[name] and sum(times[name]) > budget_s:
                continue
            time.sleep(GAP_S)
            start = time.perf_counter()
            cands[name]()
            times[name].append(time.perf_counter() - start)
    return times


def peak_gflops(quick: bool) -> float:
    n = 2048 if quick else 4096
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    times = interleaved_times({"matmul": lambda: a @ b}, 5)["matmul"]
    return 2 * n**3 / min(times) / 1e9


def report(title: str, flops: float, times: dict[str, list[float]], references: list[str]) -> None:
    med = {name: statistics.median(t) for name, t in times.items()}
    best_ref = min(med[r] for r in references if r in med)
    print(f"\n{title}")
    print(
        f"  {'implementation':38s} {'median ms':>10s} {'min ms':>9s} {'x fastest ref':>14s}"
        f" {'GFLOP/s':>9s} {'% peak':>7s}"
    )
    for name, t in med.items():
        mark = " (ref)" if name in references else ""
        gflops = flops / t / 1e9
        print(
            f"  {name + mark:38s} {t * 1e3:10.2f} {min(times[name]) * 1e3:9.2f} {t / best_ref:14.2f}"
            f" {gflops:9.1f} {100 * gflops / PEAK['gflops']:7.1f}"
        )


def check(name: str, got, want, rtol: float) -> None:
    got = [np.asarray(g) for g in (got if isinstance(got, (tuple, list)) else [got])]
    want = [np.asarray(w) for w in (want if isinstance(want, (tuple, list)) else [want])]
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype, (name, g.shape, w.shape, g.dtype, w.dtype)
        err = np.abs(g - w).max()
        assert err <= rtol * np.abs(w).max(), (name, err)


# ----------------------------------------------------------------------------------
# 2-D
# ----------------------------------------------------------------------------------
def bench_2d(sizes, kernels, repeats: int) -> None:
    rng = np.random.default_rng(1)
    for n in sizes:
        image = rng.standard_normal((n, n))
        for k in kernels:
            bench_2d_case(image, rng.standard_normal((k, k)), repeats)


def bench_2d_case(image: np.ndarray, kernel: np.ndarray, repeats: int) -> None:
    n, k = image.shape[0], kernel.shape[0]
    flops = 2.0 * k * k * n * n
    cands: dict[str, Callable[[], np.ndarray]] = {
        "scipy.ndimage.correlate": lambda: scipy.ndimage.correlate(image, kernel, mode="constant"),
        "scipy.signal.fftconvolve": lambda: scipy.signal.fftconvolve(image, kernel[::-1, ::-1], "same"),
    }
    if k * k * n * n <= 49 * 512 * 512:  # correlate2d takes seconds beyond this
        cands["scipy.signal.correlate2d"] = lambda: scipy.signal.correlate2d(image, kernel, "same")
    refs = list(cands)
    auto = choose_method(image.shape, kernel.shape)
    cands[f"conv_lib auto ({auto})"] = lambda: correlate2d(image, kernel, "same")
    for method in ("direct", "im2col", "fft"):
        if method == "im2col" and k * k * n * n > 49 * 2048 * 2048:
            continue  # ~1 min; the point is made by smaller cases
        if method == "direct" and k * k * n * n > 961 * 512 * 512:
            continue
        cands[f"conv_lib {method}"] = lambda m=method: correlate2d(image, kernel, "same", m)
    want = cands["scipy.ndimage.correlate"]()
    for name, fn in cands.items():
        check(name, fn(), want, 1e-8)
    times = interleaved_times(cands, repeats)
    report(f"2-D correlate 'same' float64: image {n}x{n}, kernel {k}x{k}", flops, times, refs)


# ----------------------------------------------------------------------------------
# NCHW layers
# ----------------------------------------------------------------------------------
LAYERS = [
    ("(8,64,56,56) -> 64, 3x3, pad 1", (8, 64, 56, 56), (64, 64, 3, 3), dict(stride=1, padding=1)),
    ("(8,128,28,28) -> 128, 3x3, pad 1", (8, 128, 28, 28), (128, 128, 3, 3), dict(stride=1, padding=1)),
    ("(1,3,224,224) -> 64, 7x7, stride 2, pad 3", (1, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
]


def bench_layers(repeats: int) -> None:
    rng = np.random.default_rng(2)
    for title, x_shape, w_shape, kwargs in LAYERS:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        flops = bench_layer(title, x, w, b, kwargs, repeats)
        bench_backward(title, x, w, b, kwargs, flops, repeats)


def bench_layer(title, x, w, b, kwargs, repeats: int) -> float:
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    ref = F.conv2d(xt, wt, bt, **kwargs).numpy()
    out_h, out_w = ref.shape[2:]
    flops = 2.0 * x.shape[0] * np.prod(w.shape) * out_h * out_w
    cands = {"torch.nn.functional.conv2d": lambda: F.conv2d(xt, wt, bt, **kwargs)}
    auto = choose_method(x.shape, w.shape, kwargs["stride"])
    cands[f"conv_lib auto ({auto})"] = lambda: conv2d(x, w, b, **kwargs)
    for method in ("im2col", "direct", "fft"):
        cands[f"conv_lib {method}"] = lambda m=method: conv2d(x, w, b, method=m, **kwargs)
    for name, fn in cands.items():
        check(name, fn(), ref, 1e-4)
    times = interleaved_times(cands, repeats)
    report(f"conv2d forward float32: {title}", flops, times, ["torch.nn.functional.conv2d"])
    return flops


def bench_backward(title, x, w, b, kwargs, forward_flops, repeats: int) -> None:
    rng = np.random.default_rng(3)
    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w).requires_grad_(True)
    bt = torch.from_numpy(b).requires_grad_(True)
    out = F.conv2d(xt, wt, bt, **kwargs)
    g = rng.standard_normal(tuple(out.shape), dtype=np.float32)
    gt = torch.from_numpy(g)

    def torch_backward():
        return torch.autograd.grad(out, (xt, wt, bt), gt, retain_graph=True)

    want = [t.numpy() for t in torch_backward()]
    cands = {
        "torch autograd backward": torch_backward,
        "conv_lib conv2d_backward (auto)": lambda: conv2d_backward(g, x, w, **kwargs),
        "conv_lib conv2d_backward (direct)": lambda: conv2d_backward(g, x, w, method="direct", **kwargs),
    }
    for name, fn in list(cands.items())[1:]:
        check(name, fn(), want, 1e-4)
    times = interleaved_times(cands, repeats)
    report(
        f"conv2d backward (grad_x + grad_w + grad_b) float32: {title}",
        2 * forward_flops,
        times,
        ["torch autograd backward"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller 2-D cases, fewer repeats")
    parser.add_argument("--only", choices=["2d", "layers"], help="run one part only")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 15
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"load average at start: {load:.2f} on {os.cpu_count()} CPUs")
    PEAK["gflops"] = peak_gflops(args.quick)
    print(f"peak float32 matmul: {PEAK['gflops']:.1f} GFLOP/s")
    if args.only != "layers":
        sizes = [512] if args.quick else [512, 2048]
        bench_2d(sizes, [3, 7, 31], repeats)
    if args.only != "2d":
        bench_layers(repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at end: {load:.2f}")


if __name__ == "__main__":
    main()
