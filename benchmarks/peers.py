#!/usr/bin/env python
"""Side-by-side timings: bpnet beside PyTorch eager, scikit-learn, a NumPy MLP,
scipy CG on ex4's NumPy cost, and the GEMM bound, in one run.

    python -m benchmarks peers --device cpu --configs A,B --epochs 3 --json
    python -m benchmarks peers --device cuda --out docs/benchmarks.md

Each (configuration, peer) trains in its own child process, so that its peak
memory is its own; this process only collects the records, prints a table
(and with ``--json`` one JSON object as the last line of stdout) and writes
the Markdown report (``--out``). The method is written out in the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import DEFAULT_DATA, UNSET_MARK, child_env, module_command
from benchmarks.conv import CONV_PEERS
from benchmarks.harness import CG_PEERS, CONFIGS, SGD_PEERS, config
from benchmarks.worker import worker

ALL_PEERS = (*SGD_PEERS, "scipy-cg")
JAX_PEERS = ("jax-jit", "jax-scan", "bpnet-jax")
SWEEP_PEERS = ("bpnet", "jax-jit", "jax-scan", "gemm")
SWEEP_SUBSET = 16384  # every sweep batch size divides it: no partial batch


def run_child(job: dict, timeout: float) -> dict:
    """Run one job in a fresh interpreter and parse its record."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(job["threads"])
    if job["peer"] in JAX_PEERS and job["threads"] == 1:
        # XLA has no thread-count setting: one thread for its matmuls here,
        # and the child's CPU affinity (worker) bounds the rest
        flags = env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        env["XLA_FLAGS"] = flags.strip()
    cmd = module_command("peers", "--worker", json.dumps(job))
    base = {"config": job["config"], "peer": job["peer"], "device": job["device"]}
    try:
        proc = subprocess.run(
            cmd, env=child_env(env), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {**base, "status": "failed", "reason": f"timed out after {timeout} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        record = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        err = proc.stderr.strip().splitlines()
        why = err[-1] if err else f"exit status {proc.returncode}, no output"
        return {**base, "status": "failed", "reason": why}
    if record["status"] == "failed":
        sys.stderr.write(proc.stderr)
    return record


def _merge(rounds: list[dict]) -> dict:
    """One row from a peer's records of every round: all timed epochs, their
    best (the row's figure), median and spread; the first call of round one."""
    ok = [r for r in rounds if r.get("status") == "ok"]
    record = dict(ok[0] if ok else rounds[0])
    record.setdefault("reason", None)
    record.setdefault("extra", {})
    for key in (
        "first_call_s",
        "test_accuracy",
        "peak_rss_mb",
        "train_rss_mb",
        "loss_after_1",
    ):
        record.setdefault(key, None)
    times = [t for r in ok for t in r.get("epoch_s", [])]
    cpu = [t for r in ok for t in r.get("cpu_epoch_s", [])]
    record["cpu_epoch_s"] = cpu
    record["cpu_epoch_s_best"] = min(cpu) if cpu else None
    record["epoch_s"] = times
    record["rounds"] = len(rounds)
    record["round_best_s"] = [min(r["epoch_s"]) for r in ok if r.get("epoch_s")]
    record["epoch_s_median"] = statistics.median(times) if times else None
    record["epoch_s_best"] = min(times) if times else None
    record["spread"] = (max(times) - min(times)) / min(times) if times else None
    if ok:
        peaks = [r["peak_rss_mb"] for r in ok if r.get("peak_rss_mb")]
        record["peak_rss_mb"] = max(peaks) if peaks else None
    if len(ok) < len(rounds):
        bad = next(r for r in rounds if r.get("status") != "ok")
        record["reason"] = record["reason"] or bad.get("reason")
        if not ok:
            record["status"] = bad.get("status", "failed")
    record["ratio_gemm"] = record["ratio_torch"] = record["ratio_jax"] = None
    record["cpu_ratio_gemm"] = record["cpu_ratio_jax"] = None
    record["loss_check"] = None
    return record


def _csv(value: str, allowed: tuple, flag: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"{flag}: expected a comma-separated list of {', '.join(allowed)}; "
            f"got {value!r}"
        )
    return items


def _positive(flag: str):
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(
                f"{flag}: expected a positive integer, got {value!r}"
            )
        return n

    return parse


def _ints(flag: str):
    def parse(value: str) -> list[int]:
        try:
            items = [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            items = []
        if not items or min(items) < 1:
            raise argparse.ArgumentTypeError(
                f"{flag}: expected comma-separated positive integers, got {value!r}"
            )
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--configs",
        type=lambda v: _csv(v.upper(), tuple(CONFIGS), "--configs"),
        default=list(CONFIGS),
        help="comma-separated: A (784-128-10), B (784-512-512-10), C (ex4, CG), "
        "D (784-128-10 at batch 32)",
    )
    p.add_argument(
        "--peers",
        type=lambda v: _csv(v.lower(), ALL_PEERS, "--peers"),
        default=None,
        help=f"comma-separated subset of {','.join(ALL_PEERS)} (default: all; "
        f"with --sweep: {','.join(SWEEP_PEERS)})",
    )
    p.add_argument(
        "--no-eval",
        action="store_true",
        help="leave out the bpnet+eval row (bpnet scoring the test set every "
        "epoch, as bpnet-train does); the bpnet row never evaluates, like its peers",
    )
    p.add_argument(
        "--rounds",
        type=_positive("--rounds"),
        default=1,
        help="run every peer this many times, interleaved (round 1: each peer "
        "once, then round 2, ...); rows show the best epoch and the spread",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="instead of --configs: one hidden layer over --widths x --batches, "
        "peers bpnet, jax-jit, jax-scan and gemm unless --peers says otherwise",
    )
    p.add_argument("--widths", type=_ints("--widths"), default=[32, 128, 512, 2048])
    p.add_argument("--batches", type=_ints("--batches"), default=[32, 128, 512, 2048])
    p.add_argument("--plot", type=Path, help="with --sweep: write the PNG here")
    p.add_argument(
        "--torch-compile-mode",
        choices=("default", "reduce-overhead", "max-autotune"),
        help="torch.compile's mode (default: 'default' on the CPU, "
        "'reduce-overhead', i.e. CUDA graphs, on a GPU)",
    )
    p.add_argument("--epochs", type=_positive("--epochs"), default=3)
    p.add_argument("--threads", type=_positive("--threads"), default=None)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--subset", type=_positive("--subset"), default=None)
    p.add_argument("--maxiter", type=_positive("--maxiter"), default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=_positive("--timeout"), default=1800)
    p.add_argument("--json", action="store_true", help="last stdout line: JSON")
    p.add_argument("--out", type=Path, help="write the Markdown report here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _write_atomic(path: Path, text: str) -> None:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    from benchmarks.machine import machine_info
    from benchmarks.ratios import add_ratios, mismatches
    from benchmarks.report import markdown, text_table

    if args.sweep:
        args.configs = [f"H{w}B{b}" for w in args.widths for b in args.batches]
        args.subset = args.subset or SWEEP_SUBSET
    peers = args.peers or list(SWEEP_PEERS if args.sweep else ALL_PEERS)
    if args.no_eval:
        peers = [p for p in peers if p != "bpnet+eval"]
    if any(config(c)["data"] == "fashion" for c in args.configs):
        if not (args.data_dir / "train-images-idx3-ubyte.gz").exists():
            sys.exit(
                f"--data-dir: expected the Fashion-MNIST IDX .gz files in "
                f"{args.data_dir}, found none; pass --data-dir DIR"
            )
    threads = args.threads or len(os.sched_getaffinity(0))
    unset = [v for v in os.environ.get(UNSET_MARK, "").split(",") if v]
    settings = {
        "device": args.device,
        "configs": args.configs,
        "peers": peers,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "threads": threads,
        "subset": args.subset,
        "maxiter": args.maxiter,
        "seed": args.seed,
        "data_dir": str(args.data_dir),
        "eval": not args.no_eval,
        "compile_mode": args.torch_compile_mode,
        "sweep": args.sweep,
    }
    load = {"start": os.getloadavg()}
    jobs = []
    for cfg_name in args.configs:
        wanted = CG_PEERS if config(cfg_name)["method"] == "cg" else SGD_PEERS
        if config(cfg_name).get("conv"):
            wanted = CONV_PEERS
        jobs += [(cfg_name, p) for p in wanted if p in peers]  # bpnet first
    runs: dict[tuple, list] = {job: [] for job in jobs}
    for r in range(args.rounds):
        # each round runs every job once, starting one job later than the
        # round before, so that no peer always runs first or last
        for cfg_name, peer in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
            job = {"config": cfg_name, "peer": peer, **settings}
            record = _merge([run_child(job, args.timeout)])
            runs[cfg_name, peer].append(record)
            best = record["epoch_s_best"]
            sys.stderr.write(
                f"round {r + 1} {cfg_name} {peer:13s} {record['status']:11s} "
                + (
                    f"{best:.4f} s (best)"
                    if best is not None
                    else str(record["reason"])
                )
                + "\n"
            )
    load["end"] = os.getloadavg()
    results = [_merge(runs[job]) for job in jobs]
    add_ratios(results)
    for r in results:
        if "x_torch_step" in r["extra"]:
            sys.stderr.write(
                f"{r['config']} bpnet-torch / torch-step: "
                f"{r['extra']['x_torch_step']:.3f}x (best epochs)\n"
            )
        if "x_jax_jit" in r["extra"]:
            sys.stderr.write(
                f"{r['config']} bpnet-jax / jax-jit: "
                f"{r['extra']['x_jax_jit']:.3f}x (best epochs)\n"
            )
    report = {
        "command": shlex.join(
            [
                "python",
                "-m",
                "benchmarks",
                "peers",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "machine": {**machine_info(args.device, threads, unset), "load": load},
        "settings": settings,
        "results": results,
    }
    print(text_table(report))
    if args.sweep:
        from benchmarks.sweep import sweep_summary

        report["sweep"] = sweep_summary(report, args.plot)
        print(report["sweep"]["text"])
    if args.out:
        _write_atomic(args.out, markdown(report))
        print(f"\nwrote {args.out}")
    if args.json:
        print(json.dumps(report))
    bad = mismatches(results)
    if bad:
        sys.stderr.write(
            "loss after one epoch disagrees with the reference (so these rows "
            f"time something else): {', '.join(bad)}\n"
        )
        return 1
    return 0
