"""The child side of ``python -m benchmarks peers``: one peer on one
configuration, in a fresh interpreter (``peers --worker JOB``), pinned to its
threads, its libraries loaded before its memory high-water mark is reset. It
returns the record that ``peers --worker`` prints as one JSON line.
"""

from __future__ import annotations

import os
import resource
import traceback
from typing import Any

from benchmarks.harness import (
    CPU_TIMES,
    Unavailable,
    config,
    load_digits_split,
    load_fashion,
)

CPU_ONLY = ("sklearn", "numpy", "scipy-cg")
# imported before the memory high-water mark is reset, so that "train +RSS"
# is training alone and not the library's own footprint
PRELOAD = {
    "bpnet": ("bpnet", "scipy.optimize"),
    "bpnet+eval": ("bpnet", "scipy.optimize"),
    "jax-jit": ("jax",),
    "jax-scan": ("jax",),
    "torch-compile": ("torch", "torch._inductor"),
    "torch": ("torch",),
    "sklearn": ("sklearn.neural_network",),
    "numpy": (),
    "scipy-cg": ("scipy.optimize",),
    "gemm": ("cupy", "torch"),
    "gemm-torch": ("torch",),
    "bpnet-torch": ("bpnet", "torch", "array_api_compat.torch"),
    "bpnet-jax": ("bpnet", "jax"),
    "torch-step": ("torch",),
}


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
    if peer in ("bpnet", "bpnet+eval", "bpnet-torch", "bpnet-jax"):
        from benchmarks.bpnet_runs import (
            run_bpnet,
            run_bpnet_eval,
            run_bpnet_jax,
            run_bpnet_torch,
        )

        runners = {
            "bpnet": run_bpnet,
            "bpnet+eval": run_bpnet_eval,
            "bpnet-torch": run_bpnet_torch,
            "bpnet-jax": run_bpnet_jax,
        }
        return runners[peer]
    from benchmarks.compiled import PEERS as COMPILED
    from benchmarks.peer_models import PEERS

    return {**PEERS, **COMPILED}[peer]


def _pin(threads: int) -> None:
    """Run this child on ``threads`` of the usable cores: a bound every
    library obeys, even one (XLA) whose thread pools cannot be sized."""
    try:
        cores = sorted(os.sched_getaffinity(0))
        if threads < len(cores):
            os.sched_setaffinity(0, cores[:threads])
    except (AttributeError, OSError):
        pass


def worker(job: dict) -> dict:
    """Run ``job`` (config, peer, settings) here and return its record."""
    import threadpoolctl

    _pin(job["threads"])
    cfg = config(job["config"])
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
            if cfg.get("conv"):
                from benchmarks.conv import PEERS as CONV_RUNNERS

                run = CONV_RUNNERS[job["peer"]]
            else:
                run = _runner(job["peer"])
            out = run(cfg, tuple(data), settings)
            record.update(out, status="ok", reason=None)
            record["cpu_epoch_s"] = list(CPU_TIMES)
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
