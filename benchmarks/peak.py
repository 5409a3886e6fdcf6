"""How close the GEMM bound already is to what one core can do.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks peak

Times NumPy's float32 matmul (the GEMM bound's kernel) on a large square
product, the nearest thing to the core's sustained FP32 peak, and on the
products of one step of configs A (784-128-10, batch 256) and B
(784-512-512-10, batch 128): forward, weight gradient and input gradient.

Each product is timed in the layout a training step (and the GEMM bound)
gives it, with the weights stored (in, out): the forward ``X @ W``, the
weight gradient ``X.T @ dZ`` and the input gradient ``dZ @ W.T``, a
transposed view handed to BLAS. Then in the other layouts that compute the
same numbers: with the transposed operand copied to a contiguous array first
(the copy not timed) and, for the input gradient, as ``W @ dZ.T`` written
into a (in, batch) array whose transpose is the gradient (what a library
that picks its own layouts can do). Prints GFLOP/s of each (best of several
repeats) and its fraction of the square product's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from benchmarks.harness import best_seconds

STEPS = {
    "A": (256, [784, 128, 10]),
    "B": (128, [784, 512, 512, 10]),
}


def layouts(batch: int, n_in: int, n_out: int) -> dict[str, dict[str, Callable]]:
    """product -> {layout: a call computing it into a preallocated array}."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    X = rng.standard_normal((batch, n_in), dtype=f32)
    W = rng.standard_normal((n_in, n_out), dtype=f32)
    dZ = rng.standard_normal((batch, n_out), dtype=f32)
    Xt, Wt = np.ascontiguousarray(X.T), np.ascontiguousarray(W.T)
    Z, G, dX = (np.empty(s, f32) for s in ((batch, n_out), W.shape, X.shape))
    dXt = np.empty((n_in, batch), f32)
    return {
        "forward": {"X @ W": lambda: np.matmul(X, W, out=Z)},
        "weight gradient": {
            "X.T @ dZ": lambda: np.matmul(X.T, dZ, out=G),
            "contiguous X.T": lambda: np.matmul(Xt, dZ, out=G),
        },
        "input gradient": {
            "dZ @ W.T": lambda: np.matmul(dZ, W.T, out=dX),
            "contiguous W.T": lambda: np.matmul(dZ, Wt, out=dX),
            "W @ dZ.T, transposed out": lambda: np.matmul(W, dZ.T, out=dXt),
        },
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=50)
    args = p.parse_args(argv)
    n = 2048
    a, b = (np.random.default_rng(0).standard_normal((n, n), np.float32) for _ in "ab")
    out = np.empty((n, n), np.float32)
    peak = 2.0 * n**3 / best_seconds(lambda: np.matmul(a, b, out=out), 7) / 1e9
    print(f"square 2048^3: {peak:.1f} GFLOP/s (the reference)")
    for name, (batch, widths) in STEPS.items():
        for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
            flop = 2.0 * batch * n_in * n_out
            for what, calls in layouts(batch, n_in, n_out).items():
                if what == "input gradient" and i == 0:
                    continue  # the first layer's is never computed
                for layout, call in calls.items():
                    s = best_seconds(call, args.reps)
                    g = flop / s / 1e9
                    print(
                        f"{name} layer {i + 1} {what}, {layout} "
                        f"({batch}x{n_in}x{n_out}): {s * 1e6:.1f} us, "
                        f"{g:.1f} GFLOP/s, {g / peak:.2f} of the square product's"
                    )
