"""The machine block of the peers report: CPU, cores, BLAS as threadpoolctl
sees it, GPU, OS, library versions and the variables removed, as a record
(``machine_info``) and as Markdown lines (``machine_lines``)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any

PACKAGES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "array-api-compat",
    "threadpoolctl",
    "bpnet-arrayapi",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu(device: str) -> str | None:
    if device != "cuda":
        return None
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def machine_info(device: str, threads: int, unset: list[str]) -> dict[str, Any]:
    """CPU, cores, BLAS as threadpoolctl sees it (under the thread limit the
    runs use), GPU, library versions, and the variables removed."""
    import threadpoolctl

    with threadpoolctl.threadpool_limits(threads):
        import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reports)

        blas = [
            {
                k: info.get(k)
                for k in ("internal_api", "version", "architecture", "num_threads")
            }
            for info in threadpoolctl.threadpool_info()
            if info.get("user_api") == "blas"
        ]
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "threads": threads,
        "blas": blas,
        "gpu": _gpu(device),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "env_unset": unset,
        "executable": sys.executable,
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def machine_lines(m: dict) -> list[str]:
    blas = "; ".join(
        f"{b['internal_api']} {b['version']} ({b['architecture']}, "
        f"{_plural(b['num_threads'], 'thread')})"
        for b in m["blas"]
    )
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), "
        f"{_plural(m['threads'], 'thread')} per run",
        f"- BLAS (threadpoolctl): {blas or 'none found'}",
        f"- GPU: {m['gpu'] or 'none used'}",
        f"- OS: {m['os']}",
        f"- Versions: {versions}",
    ]
    if m.get("load"):
        start, end = (
            ", ".join(f"{x:.2f}" for x in m["load"][k]) for k in ("start", "end")
        )
        lines.append(
            f"- Load average (1, 5, 15 min): {start} at the start, {end} at the end"
        )
    if m["env_unset"]:
        lines.append(f"- Removed from the environment: {', '.join(m['env_unset'])}")
    return lines
