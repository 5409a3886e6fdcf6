#!/usr/bin/env python
"""Where a bpnet training step's time goes on the CPU, and its fixed cost.

    python -m benchmarks profile --config A --threads 1

For one configuration it reports per step of ``bpnet.fit``, in microseconds:

- step: the best epoch over ``--epochs`` divided by its steps, with nothing
  timed inside it;
- then the same fit again with each part timed where it runs, in exclusive
  time (a part's time less the parts it calls): the matrix products (the
  backend's ``matmul`` and ``matmul_into``, the folded SGD update included),
  the batch gather (``take_rows``: the batch, its targets, its labels), the
  loss and its gradient, the activations (forward and backward), the rest of
  the Dense layers (the bias add, the bias gradient and its update, the
  Python of their methods) and the training-accuracy count; each timer's own
  cost is taken off;
- rest: the step less those parts: the epoch loop and the step's Python (the
  loss and accuracy sums, the layer loops, method calls).

Wall time (``time.perf_counter``) of a process that should be alone on its
core: run it on a quiet machine, under ``taskset -c 0`` for one thread.

``--tiny`` also times whole steps on tiny batches (1 to 16 rows), where the
arithmetic is nearly nothing: the fixed cost of a step, read directly.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from benchmarks.harness import config, initial_params, timing_flags

CLOCK = time.perf_counter


class _Parts:
    """Exclusive time per part: a wrapped call's time, less the wrapped calls
    made inside it, is added to its part."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._inner = [0.0]  # time of wrapped calls inside the open one

    def wrap(self, part: str, fn):
        self.total.setdefault(part, 0.0)
        self.calls.setdefault(part, 0)
        inner = self._inner

        def timed(*args, **kwargs):
            inner.append(0.0)
            t0 = CLOCK()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = CLOCK() - t0
                self.total[part] += dt - inner.pop()
                self.calls[part] += 1
                inner[-1] += dt

        timed.__wrapped__ = fn
        return timed


def _timer_cost() -> float:
    """Seconds one wrapped call adds around a call that does nothing."""
    parts = _Parts()
    nothing = parts.wrap("x", lambda: None)
    n = 200_000
    t0 = CLOCK()
    for _ in range(n):
        nothing()
    wrapped = (CLOCK() - t0) / n
    t0 = CLOCK()
    for _ in range(n):
        (lambda: None)()
    return wrapped - (CLOCK() - t0) / n


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


def fit_step_us(cfg, X, y, epochs, backend=None, seed=0, on_epoch=None):
    """(best seconds per step of bpnet.fit, steps per epoch, the index of the
    best epoch); ``on_epoch()`` runs at each epoch's end."""
    import bpnet
    from backends.numpy_backend import NumPyBackend

    backend = backend or NumPyBackend()
    net = _network(cfg, backend, seed)
    bs = cfg["batch_size"]
    steps = -(-X.shape[0] // bs)
    marks = [CLOCK()]

    def mark(*_):
        marks.append(CLOCK())
        if on_epoch is not None:
            on_epoch()

    bpnet.fit(
        net,
        X,
        y,
        epochs=1 + epochs,
        batch_size=bs,
        optimizer=bpnet.SGD(lr=cfg["lr"]),
        callbacks=[mark],
    )
    times = [b - a for a, b in zip(marks[1:], marks[2:])]  # after the warm-up
    best = min(range(len(times)), key=times.__getitem__)
    return times[best] / steps * 1e6, steps, best


def in_place_times(cfg, X, y, epochs):
    """Microseconds per step of each part of a step, timed where it runs."""
    import bpnet.train.epoch as epoch_module
    from backends.numpy_backend import NumPyBackend
    from bpnet.nn.activations import ReLU
    from bpnet.nn.layers import Dense
    from bpnet.nn.losses import SoftmaxCrossEntropy

    parts = _Parts()
    backend = NumPyBackend()
    for name in ("matmul", "matmul_into"):
        setattr(backend, name, parts.wrap("matmuls", getattr(backend, name)))
    for name in ("take_rows", "take_rows_into"):
        setattr(backend, name, parts.wrap("gather", getattr(backend, name)))
    if backend.softmax_cross_entropy is not None:  # the backend's own loss kernel
        backend.softmax_cross_entropy = parts.wrap(
            "loss and gradient", backend.softmax_cross_entropy
        )
    patched = [
        (SoftmaxCrossEntropy, "loss_and_grad", "loss and gradient"),
        (ReLU, "forward", "activations"),
        (ReLU, "backward", "activations"),
        (Dense, "forward", "dense: bias, Python"),
        (Dense, "backward", "dense: bias, Python"),
        (Dense, "backward_sgd", "dense: bias, Python"),
        (epoch_module, "_correct", "accuracy count"),
        (epoch_module, "_correct_count", "accuracy count"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patched]
    for owner, name, part in patched:
        setattr(owner, name, parts.wrap(part, getattr(owner, name)))
    snapshots = []  # the parts' totals and calls at each epoch's end

    def snapshot():
        snapshots.append((dict(parts.total), dict(parts.calls)))

    try:
        step_us, steps, best = fit_step_us(cfg, X, y, epochs, backend, 0, snapshot)
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    cost = _timer_cost()
    # the best timed epoch's parts: the snapshots around it (0 is the warm-up)
    (t0, c0), (t1, c1) = snapshots[best], snapshots[best + 1]
    calls = {k: (c1[k] - c0[k]) / steps for k in c1}
    return {
        "step_timed_us": step_us,
        "timer_cost_us": cost * 1e6,
        "parts_us": {
            k: (t1[k] - t0[k]) / steps * 1e6 - calls[k] * cost * 1e6 for k in t1
        },
        "calls": calls,
    }


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
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--tiny", action="store_true", help="also time tiny batches")
    timing_flags(ap, threads=1, json=True, data_dir=True)
    args = ap.parse_args(argv)
    import threadpoolctl

    from benchmarks.harness import load_fashion

    cfg = config(args.config)
    with threadpoolctl.threadpool_limits(args.threads):
        X, y, _, _, _ = load_fashion(args.data_dir)
        if args.subset:
            X, y = X[: args.subset], y[: args.subset]
        step_us, steps, _ = fit_step_us(cfg, X, y, args.epochs)
        placed = in_place_times(cfg, X, y, args.epochs)
        tiny = tiny_batches(cfg, X, y, 2) if args.tiny else {}
    parts = placed["parts_us"]
    # from the timed fit itself, less every timer's cost
    overhead = sum(placed["calls"].values()) * placed["timer_cost_us"]
    rest = placed["step_timed_us"] - overhead - sum(parts.values())
    out = {
        "config": args.config,
        "load": os.getloadavg(),
        "step_us": step_us,
        "steps": steps,
        **placed,
        "rest_us": rest,
        "tiny_batch_step_us": tiny,
    }
    print(
        f"{args.config}: {cfg['label']}, {args.threads} thread(s), load {out['load']}"
    )
    timed = placed["step_timed_us"] - overhead
    print(f"  step (bpnet.fit, best epoch / steps)  {step_us:8.1f} us")
    print(f"  step, parts timed, less the timers    {timed:8.1f} us")
    for key, us in [*parts.items(), ("rest: epoch loop, step's Python", rest)]:
        calls = placed["calls"].get(key)
        n = f"  {calls:.0f} calls" if calls else ""
        print(f"  {key:37s} {us:8.1f} us  ({100 * us / timed:4.1f}%){n}")
    print(
        f"  (timer cost {placed['timer_cost_us']:.2f} us a call, "
        f"{overhead:.1f} us a step)"
    )
    for b, us in tiny.items():
        print(f"  batch {b:3d}: {us:7.1f} us per step")
    if args.json:
        print(json.dumps(out))
    return 0
