"""Strong and weak scaling of data-parallel training on this machine.

    python -m benchmarks scaling run --data-dir ../shared/data/fashion-mnist

runs, in interleaved rounds (so a burst of load from other users falls on
every variant alike), one ``mpiexec`` launch per variant: configs A
(784-128-10) and B (784-512-512-10) on 1 and 2 ranks, one BLAS thread per
rank, Fashion-MNIST rows from a memory-mapped .npy. It prints the tables of
docs/scaling.md: seconds per epoch (the median over rounds of each launch's
epochs after the first), efficiencies, one allreduce's time, and each rank's
memory. Timings are measurements, never test assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import child_env, module_command
from benchmarks.harness import table_head

CONFIGS = {"A": [784, 128, 10], "B": [784, 512, 512, 10]}
# (config, ranks, global batch, distributed, overlap)
VARIANTS = [
    ("A", 1, 256, False, False),
    ("A", 1, 256, True, False),
    ("A", 2, 256, True, False),  # strong: same global batch
    ("A", 2, 512, True, False),  # weak: 256 rows per rank
    ("B", 1, 128, False, False),
    ("B", 1, 128, True, False),
    ("B", 1, 256, False, False),
    ("B", 2, 128, True, False),  # strong at B's batch
    ("B", 2, 256, True, False),  # strong at 256, and weak: 128 rows per rank
    ("B", 2, 256, True, True),  # the same with overlapped bucket reductions
]
# Two independent one-rank runs at once (no MPI): each at the per-rank batch of
# the weak-scaling variants, so T1 over their epoch is weak scaling's ceiling.
PAIRS = [("A", 256), ("B", 128)]


def _memory() -> dict:
    """This process's peak and current resident memory, in MiB."""
    out = {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


def _net(config: str):
    import bpnet

    widths = CONFIGS[config]
    layers = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [bpnet.Dense(a, b), bpnet.ReLU()]
    layers.append(bpnet.Dense(widths[-2], widths[-1]))
    return bpnet.Sequential(layers, seed=0)


def worker(args: argparse.Namespace) -> None:
    import numpy as np

    import bpnet

    comm = None
    if args.distributed:
        from bpnet import distributed

        comm = distributed.init("cpu", overlap=args.overlap)
    X = np.load(args.x, mmap_mode="r")
    y = np.load(args.y)
    if not args.mmap:  # every rank holds the whole training set in memory
        X = np.array(X)
    net = _net(args.config)
    h = bpnet.fit(
        net,
        X,
        y,
        epochs=args.epochs,
        batch_size=args.batch,
        optimizer="sgd",
        lr=0.05,
        comm=comm,
    )
    record = {"seconds": h["seconds"], "loss": h["loss"][-1], **_memory()}
    records = [record] if comm is None else comm.mpi.gather(record, root=0)
    if comm is None or comm.is_root:
        print(json.dumps(records))


def allreduce(args: argparse.Namespace) -> None:
    """Median time of one blocking allreduce of config's gradient buffer."""
    import numpy as np

    from bpnet import distributed

    comm = distributed.init("cpu")
    n = sum(a * b + b for a, b in zip(CONFIGS[args.config], CONFIGS[args.config][1:]))
    buf = np.ones(n + 3, dtype=np.float32)
    times = []
    for _ in range(args.reps):
        comm.barrier()
        t0 = time.perf_counter()
        comm.wait([comm.start(buf, 0, buf.size)])
        times.append(time.perf_counter() - t0)
    worst = comm.mpi.reduce(statistics.median(times[5:]), op=comm.MPI.MAX, root=0)
    if comm.is_root:
        print(json.dumps({"params": n, "seconds": worst}))


def _launch(ranks: int, argv: list[str]) -> list:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = module_command("scaling", *argv)
    if ranks > 1 or "--distributed" in argv or argv[0] == "allreduce":
        cmd = [str(mpiexec), "-n", str(ranks), *cmd]
    out = subprocess.run(
        cmd, env=child_env(env), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pair(argv: list[str]) -> list:
    """Two plain processes at once, no MPI: what sharing the machine's cores,
    caches and memory bandwidth alone costs (weak scaling's ceiling here)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = module_command("scaling", *argv)
    procs = [
        subprocess.Popen(cmd, env=child_env(env), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a co-run worker failed: {outs}")
    return [json.loads(o.strip().splitlines()[-1])[0] for o in outs]


def _uptime() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from bpnet import data

    ds = data.load_mnist(kind="fashion", data_dir=args.data_dir)
    tmp = Path(tempfile.mkdtemp())
    X = ds.X_train[: args.rows].astype(np.float32)
    np.save(tmp / "X.npy", X)
    np.save(tmp / "y.npy", ds.y_train[: args.rows])
    files = ["--x", str(tmp / "X.npy"), "--y", str(tmp / "y.npy")]
    times: dict = {v: [] for v in VARIANTS}
    pairs: dict = {v: [] for v in PAIRS}
    loads = []
    for r in range(args.rounds):
        loads.append(_uptime())
        for v in VARIANTS:
            config, ranks, batch, dist, overlap = v
            argv = ["worker", "--config", config, "--batch", str(batch)]
            argv += ["--epochs", str(args.epochs), *files]
            argv += ["--distributed"] * dist + ["--overlap"] * overlap
            recs = _launch(ranks, argv)
            times[v].append(statistics.median(recs[0]["seconds"][1:]))
            print(f"round {r + 1} {v}: {times[v][-1]:.3f} s/epoch", file=sys.stderr)
        for config, batch in PAIRS:
            argv = ["worker", "--config", config, "--batch", str(batch)]
            recs = _pair(argv + ["--epochs", str(args.epochs), *files])
            t = max(statistics.median(rec["seconds"][1:]) for rec in recs)
            pairs[(config, batch)].append(t)
            print(
                f"round {r + 1} pair {config} {batch}: {t:.3f} s/epoch", file=sys.stderr
            )
    loads.append(_uptime())
    ar = {c: _launch(2, ["allreduce", "--config", c]) for c in CONFIGS}
    mem = {}
    for mmap in (False, True):
        argv = ["worker", "--config", "A", "--batch", "256", "--epochs", "1", *files]
        mem[mmap] = _launch(2, argv + ["--distributed"] + ["--mmap"] * mmap)
    result = {
        "rows": args.rows,
        "rounds": args.rounds,
        "load_average_per_round": loads,
        "seconds_per_epoch": {
            "/".join(map(str, v)): sorted(t) for v, t in times.items()
        },
        "two_plain_processes_at_once": {
            "/".join(map(str, v)): sorted(t) for v, t in pairs.items()
        },
        "allreduce": ar,
        "memory_mib": {"in_memory": mem[False], "mmap": mem[True]},
        "data_mib": X.nbytes / 2**20,
    }
    print(json.dumps(result, indent=1))


# The alpha-beta model of a ring allreduce: 2 (P - 1) steps, each paying the
# latency alpha and moving 1/P of the buffer at bandwidth beta.
NETWORKS = {
    # name: (GPUs, alpha seconds per step, beta bytes/s per GPU)
    "8 GPUs, NVLink": (8, 10e-6, 150e9),
    "64 GPUs, InfiniBand": (64, 20e-6, 25e9),
}
GPU_FLOPS = 33e12  # sustained FP32: half an H100 SXM's 67 TFLOP/s
GPU_STEP_FLOOR = 150e-6  # a small step is launch-bound: ~20 kernels at ~7 us
MODELS = {
    # name: (parameters, per-GPU batch)
    "B 784-512-512-10": (669_706, 128),
    "4096-4096-4096": (2 * (4096 * 4096 + 4096), 1024),
}


def ring_allreduce(n_bytes: float, p: int, alpha: float, beta: float) -> float:
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * n_bytes / beta


def model(args: argparse.Namespace) -> None:
    """Print the expected weak-scaling speed-up (per-GPU batch fixed)."""
    head = ("model", "network", "compute/step", "allreduce", "speed-up")
    print("\n".join(table_head(*head, "with overlap")))
    for name, (n, batch) in MODELS.items():
        flops = 6 * n * batch  # forward 2 n, backward 4 n per sample
        t_c = max(flops / GPU_FLOPS, GPU_STEP_FLOOR)
        if args.cpu_step and name.startswith("B"):
            t_c = args.cpu_step  # this machine's measured step, for comparison
        for net, (p, alpha, beta) in NETWORKS.items():
            t_ar = ring_allreduce(4 * n, p, alpha, beta)
            plain = p * t_c / (t_c + t_ar)
            # backward (2/3 of the step) hides the reduction's start
            hidden = p * t_c / (t_c / 3 + max(2 * t_c / 3, t_ar))
            print(
                f"| {name} | {net} | {t_c * 1e3:.2f} ms | {t_ar * 1e3:.2f} ms "
                f"| {plain:.1f} | {hidden:.1f} |"
            )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data-dir", required=True)
    r.add_argument("--rows", type=int, default=60000)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--epochs", type=int, default=3)
    w = sub.add_parser("worker")
    w.add_argument("--config", choices=CONFIGS)
    w.add_argument("--batch", type=int)
    w.add_argument("--epochs", type=int, default=3)
    w.add_argument("--x")
    w.add_argument("--y")
    w.add_argument("--distributed", action="store_true")
    w.add_argument("--overlap", action="store_true")
    w.add_argument("--mmap", action="store_true")
    a = sub.add_parser("allreduce")
    a.add_argument("--config", choices=CONFIGS)
    a.add_argument("--reps", type=int, default=200)
    m = sub.add_parser("model")
    m.add_argument("--cpu-step", type=float, default=None)
    args = p.parse_args(argv)
    modes = {"run": run, "worker": worker, "allreduce": allreduce, "model": model}
    modes[args.mode](args)
