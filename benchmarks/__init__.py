"""bpnet's benchmarks: ``python -m benchmarks SUBCOMMAND`` (see ``__main__``).

Not part of the bpnet distribution, and never imported by bpnet. This module
imports only the standard library, so the entry point can re-execute itself
before NumPy is first imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: where Fashion-MNIST is looked for unless --data-dir says otherwise
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"

# Set for old OpenBLAS builds, these slow down a current NumPy: the timing
# subcommands run without them, re-executing before NumPy is first imported,
# and say in their report which were unset.
SLOW_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
UNSET_MARK = "BPNET_BENCH_UNSET"


def module_command(*args: str) -> list[str]:
    """The command that runs a subcommand in a child interpreter."""
    return [sys.executable, "-m", "benchmarks", *args]


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this checkout first on PYTHONPATH: the child finds this
    package and this checkout's bpnet, whatever its working directory."""
    path = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}
