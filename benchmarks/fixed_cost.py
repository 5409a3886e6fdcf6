#!/usr/bin/env python
"""bpnet.fit's fixed cost per step on NumPy, quickly, and two checkouts side by side.

    python -m benchmarks fixed-cost --trees /old/checkout,/new/checkout --rounds 2

For each width (784-width-10, ReLU, softmax cross-entropy, plain SGD) and each
batch size, one child process per checkout trains 1 + ``--epochs`` epochs on
8192 random rows and reports the best epoch's CPU seconds per step of its one
thread (``time.process_time``, one BLAS thread); the fixed cost is the
intercept of ``benchmarks.sweep.fixed_cost``'s line through those points. Checkouts
alternate within each round (old, new, old, new, ...), so a load that changes
during the run falls on both. No data files are read: the FLOPs per step do
not depend on the values, and the sweep's Fashion-MNIST runs give the same
per-step times within the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = 8192


def _child(width: int, batches: list[int], epochs: int) -> dict:
    import numpy as np

    import bpnet

    rng = np.random.default_rng(0)
    X = rng.random((ROWS, 784), dtype=np.float32)
    y = rng.integers(0, 10, ROWS)
    us = {}
    for bs in batches:
        net = bpnet.Sequential(
            [bpnet.Dense(784, width), bpnet.ReLU(), bpnet.Dense(width, 10)], seed=0
        )
        marks: list[float] = []
        bpnet.fit(
            net,
            X,
            y,
            epochs=1 + epochs,
            batch_size=bs,
            optimizer=bpnet.SGD(lr=0.05),
            callbacks=[lambda *_, marks=marks: marks.append(time.process_time())],
        )
        best = min(b - a for a, b in zip(marks, marks[1:]))
        us[bs] = best / -(-ROWS // bs) * 1e6
    return {"width": width, "us": us, "bpnet": bpnet.__file__}


def _fixed(width: int, us: dict) -> float:
    from benchmarks.sweep import fixed_cost

    batches = sorted(us)
    flops = [2.0 * b * (2 * 784 * width + 3 * 10 * width) for b in batches]
    fixed, _ = fixed_cost([us[b] * 1e-6 for b in batches], flops)
    return fixed * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trees", default=str(HERE.parent), help="comma-separated")
    p.add_argument("--widths", default="32,128")
    p.add_argument("--batches", default="32,128,512,2048")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    if args.child:
        print(json.dumps(_child(widths[0], batches, args.epochs)))
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    trees = args.trees.split(",")
    print(f"load average at the start: {os.getloadavg()}")
    for r in range(args.rounds):
        for width in widths:
            for tree in trees:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        "--widths",
                        str(width),
                        "--batches",
                        args.batches,
                        "--epochs",
                        str(args.epochs),
                    ],
                    env={**env, "PYTHONPATH": tree},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                res = json.loads(out.stdout.strip().splitlines()[-1])
                us = {int(k): v for k, v in res["us"].items()}
                steps = " ".join(f"b{b} {us[b]:.0f}" for b in batches)
                print(
                    f"round {r + 1} width {width:4d} {tree}: {steps} us/step; "
                    f"fixed {_fixed(width, us):.1f} us"
                )
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
