#!/usr/bin/env python
"""Side-by-side timings: bpnet beside PyTorch eager, scikit-learn, a NumPy MLP,
scipy CG on ex4's NumPy cost, and the GEMM bound, in one run.

    python scripts/bench.py --device cpu --configs A,B --epochs 3 --json
    python scripts/bench.py --device cuda --out docs/benchmarks.md

Each (configuration, peer) trains in its own child process, so that its peak
memory is its own; this process only collects the records, prints a table
(and with ``--json`` one JSON object as the last line of stdout) and writes
the Markdown report (``--out``). The method is written out in the report.
"""

from __future__ import annotations

import os
import sys

# Set for old OpenBLAS builds, these slow down a current NumPy: run without
# them, which means re-executing before NumPy is first imported.
SLOW_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
UNSET_MARK = "BPNET_BENCH_UNSET"


def _reexec_without_slow_env() -> None:
    found = [k for k in SLOW_ENV if k in os.environ]
    if not found:
        return
    env = {k: v for k, v in os.environ.items() if k not in SLOW_ENV}
    env[UNSET_MARK] = ",".join(filter(None, [env.get(UNSET_MARK, ""), *found]))
    script = os.path.abspath(__file__)
    os.execve(sys.executable, [sys.executable, script, *sys.argv[1:]], env)


if __name__ == "__main__":
    _reexec_without_slow_env()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(HERE), str(REPO)):  # this checkout's bpnet, not an installed one
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_common import (  # noqa: E402
    CG_PEERS,
    CONFIGS,
    SGD_PEERS,
    Unavailable,
    load_digits_split,
    load_fashion,
)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"
ALL_PEERS = ("bpnet", "torch", "sklearn", "numpy", "scipy-cg", "gemm", "gemm-torch")
CPU_ONLY = ("sklearn", "numpy", "scipy-cg")
# imported before the memory high-water mark is reset, so that "train +RSS"
# is training alone and not the library's own footprint
PRELOAD = {
    "bpnet": ("bpnet", "scipy.optimize"),
    "torch": ("torch",),
    "sklearn": ("sklearn.neural_network",),
    "numpy": (),
    "scipy-cg": ("scipy.optimize",),
    "gemm": ("cupy", "torch"),
    "gemm-torch": ("torch",),
}


# --- the child: one peer on one configuration -------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> int | None:
    """Reset this process's RSS high-water mark; return RSS (kB), or None."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_kb("VmRSS")


def _runner(peer: str) -> Any:
    if peer == "bpnet":
        from bench_bpnet import run_bpnet

        return run_bpnet
    from bench_peers import PEERS

    return PEERS[peer]


def worker(job: dict) -> dict:
    """Run ``job`` (config, peer, settings) here and return its record."""
    import threadpoolctl

    cfg = CONFIGS[job["config"]]
    settings = dict(job)
    if job["peer"] in CPU_ONLY:
        settings["device"] = "cpu"
    record = {
        "config": job["config"],
        "peer": job["peer"],
        "device": settings["device"],
    }
    with threadpoolctl.threadpool_limits(job["threads"]):
        if cfg["data"] == "fashion":
            *data, reader = load_fashion(job["data_dir"])
        else:
            *data, reader = load_digits_split()
        if job["subset"]:
            data[0], data[1] = data[0][: job["subset"]], data[1][: job["subset"]]
        gemm_on_cpu = job["peer"] == "gemm" and settings["device"] == "cpu"
        for module in () if gemm_on_cpu else PRELOAD[job["peer"]]:
            try:
                __import__(module)
            except Exception:  # missing or broken: the runner says so itself
                pass
        rss0 = _reset_peak()
        try:
            out = _runner(job["peer"])(cfg, tuple(data), settings)
            record.update(out, status="ok", reason=None)
        except Unavailable as exc:
            record.update(status="unavailable", reason=str(exc))
        except Exception as exc:
            traceback.print_exc()
            record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    hwm = _status_kb("VmHWM")
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record["train_rss_mb"] = (hwm - rss0) / 1024 if rss0 and hwm else None
    record["n_train"] = int(data[0].shape[0])
    record["data_reader"] = reader
    return record


# --- the parent ----------------------------------------------------------------
def run_child(job: dict, timeout: float) -> dict:
    """Run one job in a fresh interpreter and parse its record."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(job["threads"])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    base = {"config": job["config"], "peer": job["peer"], "device": job["device"]}
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout
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


def _finish(record: dict) -> dict:
    record.setdefault("reason", None)
    record.setdefault("extra", {})
    for key in ("first_call_s", "test_accuracy", "peak_rss_mb", "train_rss_mb"):
        record.setdefault(key, None)
    times = record.setdefault("epoch_s", [])
    record["epoch_s_median"] = statistics.median(times) if times else None
    record["ratio_gemm"] = record["ratio_torch"] = None
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--configs",
        type=lambda v: _csv(v.upper(), tuple(CONFIGS), "--configs"),
        default=list(CONFIGS),
        help="comma-separated: A (784-128-10), B (784-512-512-10), C (ex4, CG)",
    )
    p.add_argument(
        "--peers",
        type=lambda v: _csv(v.lower(), ALL_PEERS, "--peers"),
        default=list(ALL_PEERS),
        help=f"comma-separated subset of {','.join(ALL_PEERS)}",
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
    from bench_report import add_ratios, machine_info, markdown, text_table

    if any(CONFIGS[c]["data"] == "fashion" for c in args.configs):
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
        "peers": args.peers,
        "epochs": args.epochs,
        "threads": threads,
        "subset": args.subset,
        "maxiter": args.maxiter,
        "seed": args.seed,
        "data_dir": str(args.data_dir),
    }
    results = []
    for config in args.configs:
        wanted = CG_PEERS if CONFIGS[config]["method"] == "cg" else SGD_PEERS
        for peer in [p for p in wanted if p in args.peers]:
            job = {"config": config, "peer": peer, **settings}
            record = _finish(run_child(job, args.timeout))
            med = record["epoch_s_median"]
            sys.stderr.write(
                f"{config} {peer:8s} {record['status']:11s} "
                + (
                    f"{med:.4f} s (median)"
                    if med is not None
                    else str(record["reason"])
                )
                + "\n"
            )
            results.append(record)
    add_ratios(results)
    script = os.path.relpath(Path(__file__).resolve(), REPO)
    report = {
        "command": shlex.join(
            ["python", script, *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": machine_info(args.device, threads, unset),
        "settings": settings,
        "results": results,
    }
    print(text_table(report))
    if args.out:
        _write_atomic(args.out, markdown(report))
        print(f"\nwrote {args.out}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
