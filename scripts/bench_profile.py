#!/usr/bin/env python
"""Where a bpnet training step's time goes on the CPU, and its fixed cost.

    python scripts/bench_profile.py --config A --threads 1

For one configuration it reports per step, in microseconds:

All times are CPU seconds of the training thread (``time.thread_time``):
with one BLAS thread every step's work runs there, and on a machine shared
with other work, time spent waiting for a core is not counted.

- step: ``bpnet.fit``'s best epoch over ``--epochs`` divided by its steps;
- matmuls: the time inside the backend's ``matmul`` during those steps
  (each call timed in place, the timer's own cost taken off);
- gather: the time inside ``take`` (the batch, its targets, its labels);
- elementwise: every other array operation of a step (bias add, ReLU and its
  mask, the softmax cross-entropy and its gradient, the SGD updates, the
  loss and accuracy sums) replayed back to back at the step's shapes, with
  nothing else between them;
- Python dispatch: what is left, the step's Python around those calls
  (layer loops, method calls, the array-api-compat wrappers).

``--tiny`` also times whole steps on tiny batches (1 to 16 rows), where the
arithmetic is nearly nothing: the fixed cost of a step, read directly.
"""

from __future__ import annotations

import os
import sys

SLOW_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(k in os.environ for k in SLOW_ENV):
    env = {k: v for k, v in os.environ.items() if k not in SLOW_ENV}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(HERE), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_common import config, initial_params  # noqa: E402

# CPU time of this thread: with one BLAS thread all of a step's work runs
# here, and on a shared machine waiting for a core does not count
CLOCK = time.thread_time


class _Timed:
    """A callable wrapper that adds each call's wall time to ``total``."""

    def __init__(self, fn):
        self.fn, self.total, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0 = CLOCK()
        out = self.fn(*args, **kwargs)
        self.total += CLOCK() - t0
        self.calls += 1
        return out


def _timer_cost() -> float:
    """Seconds one ``_Timed`` call adds around a call that does nothing."""
    t = _Timed(lambda: None)
    n = 200_000
    t0 = CLOCK()
    for _ in range(n):
        t()
    return (CLOCK() - t0) / n - t.total / n


def _network(cfg, backend, seed):
    import bpnet

    sizes = cfg["sizes"]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(bpnet.ReLU())
        layers.append(bpnet.Dense(n_in, n_out))
    net = bpnet.Sequential(layers, device=backend, dtype="float32", seed=seed)
    net.set_parameters(initial_params(cfg, seed))
    return net


def fit_step_us(cfg, X, y, epochs, backend=None, seed=0):
    """(best seconds per step of bpnet.fit, steps per epoch, the network)."""
    import bpnet
    from backends.numpy_backend import NumPyBackend

    backend = backend or NumPyBackend()
    net = _network(cfg, backend, seed)
    bs = cfg["batch_size"]
    steps = -(-X.shape[0] // bs)
    marks = []
    bpnet.fit(
        net,
        X,
        y,
        epochs=1 + epochs,
        batch_size=bs,
        optimizer=bpnet.SGD(lr=cfg["lr"]),
        callbacks=[lambda *_: marks.append(CLOCK())],
    )
    best = min(b - a for a, b in zip(marks, marks[1:]))
    return best / steps * 1e6, steps, net


def in_place_times(cfg, X, y, epochs):
    """Microseconds per step inside matmul and take, timed where they run."""
    import array_api_compat.numpy as xp

    from backends.numpy_backend import NumPyBackend

    backend = NumPyBackend()
    matmul = _Timed(backend.matmul)
    backend.matmul = matmul
    take = _Timed(xp.take)
    xp.take = take
    try:
        step_us, steps, _ = fit_step_us(cfg, X, y, epochs, backend)
    finally:
        xp.take = take.fn
    cost = _timer_cost()
    per_step = steps * (1 + epochs)
    return {
        "step_timed_us": step_us,
        "matmul_us": (matmul.total - matmul.calls * cost) / per_step * 1e6,
        "matmul_calls": matmul.calls / per_step,
        "gather_us": (take.total - take.calls * cost) / per_step * 1e6,
        "gather_calls": take.calls / per_step,
        "timer_cost_us": cost * 1e6,
    }


def elementwise_us(cfg, repeats: int = 300) -> tuple[float, int]:
    """Microseconds per step of a step's non-matmul, non-gather operations,
    replayed back to back through the same namespace; and their count."""
    import array_api_compat.numpy as xp

    rng = np.random.default_rng(0)
    sizes, b = cfg["sizes"], cfg["batch_size"]
    f32 = np.float32
    Ws = [rng.standard_normal((i, o)).astype(f32) for i, o in zip(sizes, sizes[1:])]
    bs_ = [np.zeros(o, f32) for o in sizes[1:]]
    Zs = [rng.standard_normal((b, o)).astype(f32) for o in sizes[1:]]
    dHs = [rng.standard_normal((b, o)).astype(f32) for o in sizes[1:-1]]
    labels = rng.integers(0, sizes[-1], b)
    T = np.eye(sizes[-1], dtype=f32)[labels]
    acc = [np.zeros((), f32), np.zeros((), f32)]
    lr = np.asarray(0.1, dtype=f32)
    ops = 0

    def once():
        nonlocal ops
        ops = 0
        masks = []
        for i, Z in enumerate(Zs):
            Z += bs_[i]  # bias add
            ops += 1
            if i < len(Zs) - 1:
                m = xp.astype(Z > 0, Z.dtype)
                masks.append(m)
                _ = Z * m
                ops += 3
        Z = Zs[-1]
        S = Z - xp.max(Z, axis=1, keepdims=True)
        E = xp.exp(S)
        s = xp.sum(E, axis=1, keepdims=True)
        L = (xp.sum(xp.log(s)) - xp.sum(T * S)) * (1.0 / b)
        E /= s
        E -= T
        E *= 1.0 / b
        ops += 12
        for dH, m in zip(dHs, masks):  # ReLU's backward
            _ = dH * m
            ops += 1
        for W, bias in zip(Ws, bs_):
            for p in (W, bias):
                g = p * 1.0  # stands for the gradient bpnet hands over
                g *= lr
                p -= g
                ops += 2
        acc[0] += L * float(b)
        pred = xp.argmax(Z, axis=1)
        acc[1] += xp.sum(xp.astype(pred == labels, Z.dtype))
        ops += 6

    once()
    # the gradient copies (p * 1.0) stand in for arrays bpnet makes in its
    # matmuls; take their cost off
    copies = [p for W, bias in zip(Ws, bs_) for p in (W, bias)]
    t0 = CLOCK()
    for _ in range(repeats):
        for p in copies:
            _ = p * 1.0
    copy_s = (CLOCK() - t0) / repeats
    t0 = CLOCK()
    for _ in range(repeats):
        once()
    total = (CLOCK() - t0) / repeats
    return (total - copy_s) * 1e6, ops


def tiny_batches(cfg, X, y, epochs, sizes=(1, 2, 4, 8, 16)) -> dict[int, float]:
    """Microseconds per step of bpnet.fit on batches of a few rows."""
    out = {}
    for b in sizes:
        c = {**cfg, "batch_size": b}
        n = min(X.shape[0], 2000 * b)
        out[b], _, _ = fit_step_us(c, X[:n], y[:n], epochs)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="A", help="A, B or a sweep point H128B32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--tiny", action="store_true", help="also time tiny batches")
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=REPO.parent / "shared" / "data" / "fashion-mnist",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import threadpoolctl
    from bench_common import load_fashion

    cfg = config(args.config)
    with threadpoolctl.threadpool_limits(args.threads):
        X, y, _, _, _ = load_fashion(args.data_dir)
        if args.subset:
            X, y = X[: args.subset], y[: args.subset]
        step_us, steps, _ = fit_step_us(cfg, X, y, args.epochs)
        placed = in_place_times(cfg, X, y, args.epochs)
        elem, n_ops = elementwise_us(cfg)
        tiny = tiny_batches(cfg, X, y, 2) if args.tiny else {}
    out = {
        "config": args.config,
        "load": os.getloadavg(),
        "step_us": step_us,
        "steps": steps,
        **placed,
        "elementwise_us": elem,
        "elementwise_ops": n_ops,
        "dispatch_us": step_us - placed["matmul_us"] - placed["gather_us"] - elem,
        "tiny_batch_step_us": tiny,
    }
    print(
        f"{args.config}: {cfg['label']}, {args.threads} thread(s), load {out['load']}"
    )
    print(f"  step (bpnet.fit, best epoch / steps)  {step_us:8.1f} us CPU")
    for key, label in (
        ("matmul_us", "matmuls"),
        ("gather_us", "gather (take)"),
        ("elementwise_us", "elementwise"),
        ("dispatch_us", "Python dispatch (rest)"),
    ):
        print(f"  {label:37s} {out[key]:8.1f} us  ({100 * out[key] / step_us:4.1f}%)")
    print(
        f"  ({placed['matmul_calls']:.0f} matmul and {placed['gather_calls']:.0f} take "
        f"calls, {n_ops} other array operations per step)"
    )
    for b, us in tiny.items():
        print(f"  batch {b:3d}: {us:7.1f} us per step")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
