"""Benchmark conv_lib's convolution paths against SciPy and PyTorch, in one process.

Run ``python bench/bench_conv.py`` (or ``make bench``); ``--quick`` for a short run,
``--only 2d|layers|growth|choice`` for one part. A script, not a test: nothing here is
asserted except that every candidate computes the reference's answer.

* NCHW layers in float32 (torch's usual precision): forward against
  ``torch.nn.functional.conv2d`` and backward (grad_x, grad_w, grad_b) against torch
  autograd, for (8,64,56,56)->64 3x3 pad 1, (8,128,28,28)->128 3x3 pad 1 and
  (1,3,224,224)->64 7x7 stride 2 pad 3.
* 2-D: ``correlate2d(image, kernel, mode="same")`` in float64 on 512x512 and
  2048x2048 images with 3x3, 7x7 and 31x31 kernels, against scipy.signal.correlate2d,
  scipy.signal.fftconvolve (flipped kernel) and scipy.ndimage.correlate (zero fill).
* Growth: time against image side (64-1024), channels (16-256) and kernel size (3-11)
  for each method, with the exponent fitted on a log-log scale.
* Choice: Winograd against im2col on 13 3x3 layers (3-512 channels, 7-224 pixels), the
  layers ``choose_method``'s Winograd cost model was fitted to, and on 4 grouped and
  depthwise layers; then on 13 strided layers (7x7, 8x8, 5x5 and 3x3 at stride 2, 11x11
  at stride 4, from 2 to 512 channels), Winograd over the polyphase components against im2col; and what
  ``choose_method`` picks.

Timing (:func:`conv_lib.timing.block_times`): each candidate is timed over a block of
back-to-back calls (about 0.25 s) after a 0.2 s pause; blocks alternate between the
candidates (order rotated every round) and the median of 7 rounds is reported. A single
call timed after a pause measures torch's thread wake-up rather than its throughput
(its OpenMP threads sleep after a few ms without work); back-to-back calls without a
pause let one library's spinning threads take a core from the next.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.signal
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conv_lib import (  # noqa: E402
    choose_method,
    conv2d,
    conv2d_backward,
    correlate2d,
    release_workspaces,
    winograd_kernels,
    winograd_strided,
)
from conv_lib.timing import block_times  # noqa: E402

PEAK = {"gflops": float("nan")}
SETTINGS = {"rounds": 7, "block": 0.25}
SUMMARY: list[dict] = []


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


def times_of(cands: dict[str, Callable[[], object]], rounds: int | None = None) -> dict[str, float]:
    """Median seconds per call of each candidate (block method)."""
    raw = block_times(cands, rounds=rounds or SETTINGS["rounds"], block_seconds=SETTINGS["block"])
    return {name: statistics.median(t) for name, t in raw.items()}


def peak_gflops() -> float:
    n = 4096
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    t = times_of({"matmul": lambda: a @ b}, rounds=5)["matmul"]
    return 2 * n**3 / t / 1e9


def traced_peak_mib(fn: Callable[[], object]) -> float:
    """Largest memory NumPy allocated during one call (tracemalloc), in MiB, counting the
    work arrays that conv_lib's threads keep between calls (released first)."""
    release_workspaces()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def check(name: str, got, want, rtol: float) -> None:
    got = [np.asarray(g) for g in (got if isinstance(got, (tuple, list)) else [got])]
    want = [np.asarray(w) for w in (want if isinstance(want, (tuple, list)) else [want])]
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype, (name, g.shape, w.shape, g.dtype, w.dtype)
        err = np.abs(g - w).max()
        assert err <= rtol * np.abs(w).max(), (name, err)


def report_layer(title: str, flops: float, med: dict[str, float], ref: str, memory: dict[str, float]) -> None:
    print(f"\n{title}")
    print(
        f"  {'implementation':36s} {'median ms':>10s} {'x torch':>8s} {'GFLOP/s':>8s} {'% peak':>7s}"
        f" {'peak MiB':>9s}"
    )
    for name, t in med.items():
        gflops = flops / t / 1e9
        mem = memory.get(name)
        mem_text = f"{mem:9.1f}" if mem is not None else f"{'-':>9s}"
        print(
            f"  {name:36s} {t * 1e3:10.2f} {med[ref] / t:8.2f} {gflops:8.1f}"
            f" {100 * gflops / PEAK['gflops']:7.1f} {mem_text}"
        )


# ----------------------------------------------------------------------------------
# NCHW layers
# ----------------------------------------------------------------------------------
LAYERS = [
    ("(8,64,56,56) -> 64, 3x3, pad 1", (8, 64, 56, 56), (64, 64, 3, 3), dict(stride=1, padding=1)),
    ("(8,128,28,28) -> 128, 3x3, pad 1", (8, 128, 28, 28), (128, 128, 3, 3), dict(stride=1, padding=1)),
    ("(1,3,224,224) -> 64, 7x7, stride 2, pad 3", (1, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
]
TARGETS = {"forward": (1.0, 1.0, 0.8), "backward": (0.8, 0.8, 0.8)}


def layer_methods(w_shape, kwargs) -> list[str]:
    methods = ["im2col", "direct", "fft"]
    stride = (kwargs["stride"],) * 2
    if (w_shape[2:] == (3, 3) and stride == (1, 1)) or winograd_strided.supports(w_shape[2:], stride, (1, 1)):
        methods.insert(0, "winograd")
    return methods


def bench_layers() -> None:
    rng = np.random.default_rng(2)
    for index, (title, x_shape, w_shape, kwargs) in enumerate(LAYERS):
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        fwd, flops = bench_forward(title, x, w, b, kwargs)
        bwd = bench_backward(title, x, w, b, kwargs, flops)
        SUMMARY.append(dict(layer=title, index=index, forward=fwd, backward=bwd))


def bench_forward(title, x, w, b, kwargs):
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    ref = F.conv2d(xt, wt, bt, **kwargs).numpy()
    flops = 2.0 * x.shape[0] * np.prod(w.shape) * ref.shape[2] * ref.shape[3]
    torch_name = "torch.nn.functional.conv2d"
    auto = choose_method(x.shape, w.shape, kwargs["stride"], dtype=x.dtype)
    auto_name = f"conv_lib auto ({auto})"
    cands = {torch_name: lambda: F.conv2d(xt, wt, bt, **kwargs), auto_name: lambda: conv2d(x, w, b, **kwargs)}
    for method in layer_methods(w.shape, kwargs):
        cands[f"conv_lib {method}"] = lambda m=method: conv2d(x, w, b, method=m, **kwargs)
    for name, fn in cands.items():
        check(name, fn(), ref, 1e-4)
    slow = {name for name in cands if "direct" in name or "fft" in name}
    med = times_of({k: v for k, v in cands.items() if k not in slow})
    med.update(times_of({k: v for k, v in cands.items() if k in slow}, rounds=3))
    memory = {name: traced_peak_mib(fn) for name, fn in cands.items() if name != torch_name}
    report_layer(f"conv2d forward float32: {title}", flops, med, torch_name, memory)
    return dict(
        ratio=med[torch_name] / med[auto_name],
        auto=auto,
        memory=memory[auto_name],
        best=max((med[torch_name] / t, n) for n, t in med.items() if n != torch_name),
    ), flops


def bench_backward(title, x, w, b, kwargs, forward_flops):
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
    torch_name = "torch autograd backward"
    forward_choice = choose_method(x.shape, w.shape, kwargs["stride"], dtype=x.dtype)
    if forward_choice != "winograd" or kwargs["stride"] != 1:  # Winograd's backward: stride 1
        auto_path = "im2col"
    elif winograd_kernels.available():
        auto_path = "winograd"
    else:  # the NumPy path: Winograd's grad_x, im2col's grad_w (conv_lib.conv.conv2d_backward)
        auto_path = "wino gx + im2col gw"
    auto_name = f"conv_lib backward auto ({auto_path})"
    cands = {torch_name: torch_backward, auto_name: lambda: conv2d_backward(g, x, w, **kwargs)}
    for method in layer_methods(w.shape, kwargs)[:-2]:  # direct and fft: see the forward
        if method == "winograd" and kwargs["stride"] != 1:
            continue  # conv2d_backward's "winograd" is for stride-1 layers
        cands[f"conv_lib conv2d_backward {method}"] = lambda m=method: conv2d_backward(
            g, x, w, method=m, **kwargs
        )
    for name, fn in list(cands.items())[1:]:
        check(name, fn(), want, 1e-4)
    med = times_of(cands)
    memory = {name: traced_peak_mib(fn) for name, fn in cands.items() if name != torch_name}
    report_layer(
        f"conv2d backward (grad_x + grad_w + grad_b) float32: {title}",
        2 * forward_flops,
        med,
        torch_name,
        memory,
    )
    return dict(ratio=med[torch_name] / med[auto_name], memory=memory[auto_name], path=auto_path)


def print_summary() -> None:
    if not SUMMARY:
        return
    print("\nSummary: throughput of conv_lib's auto path as a multiple of torch's (> 1 = faster)")
    print(
        f"  {'layer':44s} {'forward':>8s} {'target':>7s} {'backward':>9s} {'target':>7s}"
        "  auto paths (fwd / bwd), peak MiB"
    )
    for row in SUMMARY:
        i = row["index"]
        fwd, bwd = row["forward"], row["backward"]
        ft, bt = TARGETS["forward"][i], TARGETS["backward"][i]
        targets = f"{'>=' + str(ft):>7s} {bwd['ratio']:8.2f}x {'>=' + str(bt):>7s}"
        print(
            f"  {row['layer']:44s} {fwd['ratio']:7.2f}x {targets}"
            f"  {fwd['auto']} / {bwd['path']}, {fwd['memory']:.1f} fwd / {bwd['memory']:.1f} bwd"
            f"  [{'met' if fwd['ratio'] >= ft else 'MISSED'} / {'met' if bwd['ratio'] >= bt else 'MISSED'}]"
        )


# ----------------------------------------------------------------------------------
# 2-D
# ----------------------------------------------------------------------------------
def bench_2d(sizes, kernels) -> None:
    rng = np.random.default_rng(1)
    for n in sizes:
        image = rng.standard_normal((n, n))
        for k in kernels:
            bench_2d_case(image, rng.standard_normal((k, k)))


def bench_2d_case(image: np.ndarray, kernel: np.ndarray) -> None:
    n, k = image.shape[0], kernel.shape[0]
    flops = 2.0 * k * k * n * n
    cands: dict[str, Callable[[], np.ndarray]] = {
        "scipy.ndimage.correlate": lambda: scipy.ndimage.correlate(image, kernel, mode="constant"),
        "scipy.signal.fftconvolve": lambda: scipy.signal.fftconvolve(image, kernel[::-1, ::-1], "same"),
    }
    if k * k * n * n <= 49 * 512 * 512:  # correlate2d takes seconds beyond this
        cands["scipy.signal.correlate2d"] = lambda: scipy.signal.correlate2d(image, kernel, "same")
    if k * k * n * n > 49 * 2048 * 2048:  # ndimage takes seconds beyond this
        cands.pop("scipy.ndimage.correlate")
    refs = list(cands)
    auto = choose_method(image.shape, kernel.shape)
    cands[f"conv_lib auto ({auto})"] = lambda: correlate2d(image, kernel, "same")
    for method in ("direct", "im2col", "fft"):
        if method != "fft" and k * k * n * n > 49 * 2048 * 2048:
            continue
        cands[f"conv_lib {method}"] = lambda m=method: correlate2d(image, kernel, "same", m)
    want = scipy.signal.fftconvolve(image, kernel[::-1, ::-1], "same")
    for name, fn in cands.items():
        check(name, fn(), want, 1e-8)
    med = times_of(cands, rounds=5)
    best_ref = min(med[r] for r in refs)
    print(f"\n2-D correlate 'same' float64: image {n}x{n}, kernel {k}x{k}")
    print(f"  {'implementation':36s} {'median ms':>10s} {'x best scipy time':>18s} {'GFLOP/s':>8s}")
    for name, t in med.items():
        mark = " (ref)" if name in refs else ""
        print(f"  {name + mark:36s} {t * 1e3:10.2f} {t / best_ref:18.2f} {flops / t / 1e9:8.1f}")


# ----------------------------------------------------------------------------------
# growth
# ----------------------------------------------------------------------------------
def fitted_exponent(sizes, seconds) -> float:
    """Slope of log(time) against log(size): time ~ size**slope."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def sweep(title: str, sizes, make, methods, max_call_s: float = 0.5) -> None:
    """Time ``conv2d`` for each method and torch over ``sizes``; ``make(size)`` gives
    ``(x, w, kwargs)``. A method is dropped at larger sizes once a call exceeds ``max_call_s``."""
    print(f"\nGrowth: {title} (float32, ms per call; exponent: time ~ size**p)")
    names = ["torch"] + [m for m in methods]
    table: dict[str, dict[int, float]] = {name: {} for name in names}
    dropped: set[str] = set()
    for size in sizes:
        x, w, kwargs = make(size)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        cands: dict[str, Callable[[], object]] = {
            "torch": lambda xt=xt, wt=wt, kw=kwargs: F.conv2d(xt, wt, **kw)
        }
        for m in methods:
            if m in dropped or (m == "winograd" and w.shape[2:] != (3, 3)):
                continue
            cands[m] = lambda m=m, x=x, w=w, kw=kwargs: conv2d(x, w, method=m, **kw)
        med = times_of(cands, rounds=3)
        for name, t in med.items():
            table[name][size] = t
            if t > max_call_s:
                dropped.add(name)
    print(f"  {'method':10s}" + "".join(f"{s:>9d}" for s in sizes) + f"{'exponent':>10s}")
    for name in names:
        row = table[name]
        cells = "".join(f"{row[s] * 1e3:9.2f}" if s in row else f"{'-':>9s}" for s in sizes)
        exp = fitted_exponent(list(row), list(row.values())) if len(row) >= 3 else float("nan")
        print(f"  {name:10s}{cells}{exp:10.2f}")


def bench_growth(quick: bool) -> None:
    rng = np.random.default_rng(4)

    def layer(n, c, o, side, k):
        x = rng.standard_normal((n, c, side, side), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32)
        return x, w, dict(padding=k // 2)

    sides = [64, 128, 256] if quick else [64, 128, 256, 512, 1024]
    sweep(
        "image side, (1,16,s,s) -> 16, 3x3 pad 1",
        sides,
        lambda s: layer(1, 16, 16, s, 3),
        ["winograd", "im2col", "direct", "fft"],
    )
    chans = [16, 32, 64] if quick else [16, 32, 64, 128, 256]
    sweep(
        "channels, (1,c,64,64) -> c, 3x3 pad 1",
        chans,
        lambda c: layer(1, c, c, 64, 3),
        ["winograd", "im2col", "direct", "fft"],
    )
    ks = [3, 5, 7] if quick else [3, 5, 7, 9, 11]
    sweep(
        "kernel size, (1,16,128,128) -> 16, kxk pad k//2",
        ks,
        lambda k: layer(1, 16, 16, 128, k),
        ["im2col", "direct", "fft"],
    )


# ----------------------------------------------------------------------------------
# choice: Winograd or im2col for 3x3 stride-1 layers
# ----------------------------------------------------------------------------------
CHOICE_LAYERS = [  # (x shape, output channels, groups)
    ((2, 3, 16, 16), 4, 1),
    ((8, 64, 14, 14), 64, 1),
    ((8, 16, 32, 32), 16, 1),
    ((8, 32, 28, 28), 32, 1),
    ((1, 64, 56, 56), 64, 1),
    ((8, 64, 56, 56), 64, 1),
    ((8, 128, 28, 28), 128, 1),
    ((8, 256, 14, 14), 256, 1),
    ((8, 512, 7, 7), 512, 1),
    ((1, 16, 224, 224), 16, 1),
    ((4, 3, 224, 224), 64, 1),
    ((1, 8, 64, 64), 8, 1),
    ((32, 32, 16, 16), 32, 1),
    # grouped and depthwise (the modern-layers chapter's depthwise step is the first)
    ((4, 32, 56, 56), 32, 32),
    ((8, 64, 56, 56), 64, 64),
    ((8, 64, 56, 56), 64, 8),
    ((8, 128, 28, 28), 128, 32),
]


def winograd_and_im2col(x, w, kwargs) -> dict[str, float]:
    """Median seconds of ``conv2d(method="winograd")`` and ``"im2col"``, both checked
    against a float64 reference first."""
    want = conv2d(x.astype(np.float64), w.astype(np.float64), method="im2col", **kwargs).astype(np.float32)
    cands = {m: (lambda m=m: conv2d(x, w, method=m, **kwargs)) for m in ("winograd", "im2col")}
    for name, fn in cands.items():
        check(name, fn(), want, 1e-4)
    return times_of(cands, rounds=5)


def bench_choice() -> None:
    """Forward float32, pad 1: Winograd's and im2col's times, and choose_method's pick."""
    print("\nChoice for 3x3 stride-1 layers (float32 forward, pad 1; ms per call)")
    print(f"  {'layer':36s} {'winograd':>9s} {'im2col':>8s} {'ratio':>6s}  {'faster':8s} {'picked':8s}")
    rng = np.random.default_rng(4)
    right = 0
    for x_shape, c_out, groups in CHOICE_LAYERS:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal((c_out, x_shape[1] // groups, 3, 3), dtype=np.float32)
        med = winograd_and_im2col(x, w, dict(padding=1, groups=groups))
        faster = min(med, key=med.get)
        picked = choose_method(x_shape, w.shape, dtype=np.float32)
        right += picked == faster
        layer = f"{x_shape} -> {c_out}" + (f", groups {groups}" if groups > 1 else "")
        print(
            f"  {layer:36s} {med['winograd'] * 1e3:9.3f} {med['im2col'] * 1e3:8.3f} "
            f"{med['winograd'] / med['im2col']:6.2f}  {faster:8s} {picked:8s}"
        )
    print(f"  choose_method picked the faster method for {right} of {len(CHOICE_LAYERS)} layers")
    bench_choice_strided()


STRIDED_CHOICE_LAYERS = [  # (x shape, weight shape, stride, padding)
    ((1, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ((8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ((8, 16, 64, 64), (32, 16, 7, 7), 2, 3),
    ((8, 64, 32, 32), (64, 64, 7, 7), 2, 3),
    ((1, 3, 32, 32), (8, 3, 7, 7), 2, 3),
    ((1, 2, 12, 12), (2, 2, 7, 7), 2, 3),
    ((2, 4, 20, 20), (8, 4, 11, 11), 4, 2),
    ((2, 256, 28, 28), (256, 256, 7, 7), 2, 3),
    ((1, 512, 14, 14), (512, 512, 7, 7), 2, 3),
    ((2, 3, 64, 64), (16, 3, 8, 8), 2, 3),
    ((1, 3, 227, 227), (96, 3, 11, 11), 4, 0),
    ((8, 32, 32, 32), (64, 32, 5, 5), 2, 2),
    ((8, 64, 56, 56), (128, 64, 3, 3), 2, 1),
]


def bench_choice_strided() -> None:
    """Forward float32 of strided layers: Winograd over the polyphase components
    (conv_lib.winograd_strided) against im2col, and choose_method's pick."""
    print("\nChoice for strided layers (float32 forward; ms per call)")
    print(f"  {'layer':44s} {'winograd':>9s} {'im2col':>8s} {'ratio':>6s}  {'faster':8s} {'picked':8s}")
    rng = np.random.default_rng(5)
    right = 0
    for x_shape, w_shape, stride, padding in STRIDED_CHOICE_LAYERS:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        med = winograd_and_im2col(x, w, dict(stride=stride, padding=padding))
        faster = min(med, key=med.get)
        picked = choose_method(x_shape, w_shape, stride=stride, dtype=np.float32)
        right += picked == faster
        layer = f"{x_shape} -> {w_shape[0]}, {w_shape[2]}x{w_shape[3]} s{stride}"
        print(
            f"  {layer:44s} {med['winograd'] * 1e3:9.3f} {med['im2col'] * 1e3:8.3f} "
            f"{med['winograd'] / med['im2col']:6.2f}  {faster:8s} {picked:8s}"
        )
    print(f"  choose_method picked the faster method for {right} of {len(STRIDED_CHOICE_LAYERS)} layers")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes")
    parser.add_argument("--only", choices=["2d", "layers", "growth", "choice"], help="run one part only")
    args = parser.parse_args(argv)
    if args.quick:
        SETTINGS.update(rounds=3, block=0.15)
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} (slows OpenBLAS; see bench/README.md)")
    print(f"load average at start: {load()}")
    PEAK["gflops"] = peak_gflops()
    print(f"GEMM peak (4096x4096 float32 matmul, block median): {PEAK['gflops']:.1f} GFLOP/s")
    if args.only in (None, "layers"):
        bench_layers()
        print_summary()
        print(f"load average after the layers: {load()}")
    if args.only in (None, "2d"):
        bench_2d([512] if args.quick else [512, 2048], [3, 7, 31])
    if args.only in (None, "growth"):
        bench_growth(args.quick)
    if args.only in (None, "choice"):
        bench_choice()
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
