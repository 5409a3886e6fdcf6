"""What the benchmark test modules share: the repository root, a run of
``python -m benchmarks peers``, and a module of the benchmarks package.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "peers", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )


def _bench_module(name: str):
    """``benchmarks.<name>``, the package at the repository root (not installed)."""
    sys.path.insert(0, str(REPO))
    try:
        return importlib.import_module(f"benchmarks.{name}")
    finally:
        sys.path.remove(str(REPO))
