#!/usr/bin/env python
"""bpnet on its torch backend against the same step in plain PyTorch eager
(the peers ``bpnet-torch`` and ``torch-step``), one epoch of each
in turn, in one process, for several rounds: on a busy machine the load
changes between the peers subcommand's one-peer-at-a-time children, here it hits both.

    python -m benchmarks torch-rounds --batch-sizes 32,256 --rounds 7 --threads 1

Prints, per batch size, seconds per epoch (best and median) and the ratio
bpnet / plain PyTorch: of the best epochs, and each round's (min, median, max).
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.harness import CONFIGS, initial_params, load_fashion, timing_flags
from benchmarks.peer_torch import torch_step_trainer


def rounds(cfg: dict, data: tuple, s: dict, n_rounds: int) -> dict:
    import bpnet

    X, y = data[0], data[1]
    epoch, _, torch, _, sync = torch_step_trainer(cfg, X, y, s)
    net = bpnet.Sequential(
        [bpnet.Dense(784, 128), bpnet.ReLU(), bpnet.Dense(128, 10)],
        device="torch",
        seed=s["seed"],
    )
    net.set_parameters(initial_params(cfg, s["seed"]))
    be = net.backend
    Xd, yd = be.asarray(X, dtype="float32"), be.asarray(y)
    opt = bpnet.SGD(lr=cfg["lr"])

    def ours() -> float:
        hist = bpnet.fit(
            net,
            Xd,
            yd,
            epochs=1,
            batch_size=cfg["batch_size"],
            optimizer=opt,
            verbose=0,
        )
        return hist["seconds"][-1]  # the epoch alone, not fit's input checks

    def theirs() -> float:
        sync()
        t = time.perf_counter()
        epoch()
        sync()
        return time.perf_counter() - t

    ours(), theirs()  # warm up
    a, b = [], []
    for r in range(n_rounds):
        first, second = (ours, theirs) if r % 2 == 0 else (theirs, ours)
        t1, t2 = first(), second()
        a.append(t1 if first is ours else t2)
        b.append(t2 if first is ours else t1)
    ratios = sorted(x / y for x, y in zip(a, b))
    return {
        "bpnet": a,
        "torch": b,
        "best_ratio": min(a) / min(b),
        "round_ratios": ratios,
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-sizes", default="32,256")
    timing_flags(p, threads=1, rounds=7, data_dir=True)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    *data, _ = load_fashion(args.data_dir)
    if args.subset:
        data[0], data[1] = data[0][: args.subset], data[1][: args.subset]
    s = {"device": "cpu", "threads": args.threads, "seed": args.seed}
    for bs in (int(v) for v in args.batch_sizes.split(",")):
        cfg = {**CONFIGS["A"], "batch_size": bs}
        out = rounds(cfg, tuple(data), s, args.rounds)
        r = out["round_ratios"]
        print(
            f"batch {bs}, {out['threads']} thread(s), {len(data[0])} samples: "
            f"bpnet-torch {min(out['bpnet']):.4f} s/epoch best, "
            f"{statistics.median(out['bpnet']):.4f} median; "
            f"torch-step {min(out['torch']):.4f} best, "
            f"{statistics.median(out['torch']):.4f} median; "
            f"ratio of bests {out['best_ratio']:.3f}, per round "
            f"{r[0]:.3f} / {statistics.median(r):.3f} / {r[-1]:.3f} (min/median/max)"
        )
    return 0
