"""How close the GEMM bound already is to what one core can do.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_peak.py

Times NumPy's float32 matmul (the GEMM bound's kernel) on a large square
product, the nearest thing to the core's sustained FP32 peak, and on the
products of one step of configs A (784-128-10, batch 256) and B
(784-512-512-10, batch 128): forward, weight gradient and input gradient.
Prints GFLOP/s of each (best of several repeats) and its fraction of the
square product's. A training step cannot run its products faster than
this, so the ratio of a peer's epoch to the GEMM bound has 1.0 as its floor.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def gflops(m: int, k: int, n: int, reps: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n / best / 1e9


STEPS = {
    "A": (256, [784, 128, 10]),
    "B": (128, [784, 512, 512, 10]),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=50)
    args = p.parse_args()
    peak = gflops(2048, 2048, 2048, 7)
    print(f"square 2048^3: {peak:.1f} GFLOP/s (the reference)")
    for name, (batch, widths) in STEPS.items():
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            shapes = {
                "forward": (batch, a, b),
                "weight gradient": (a, batch, b),
                "input gradient": (batch, b, a),
            }
            for what, (m, k, n) in shapes.items():
                if what == "input gradient" and i == 0:
                    continue  # the first layer's is never computed
                g = gflops(m, k, n, args.reps)
                print(
                    f"{name} layer {i + 1} {what} ({m}x{k} @ {k}x{n}): "
                    f"{g:.1f} GFLOP/s, {g / peak:.2f} of the square product's"
                )


if __name__ == "__main__":
    main()
