"""The memory a load may allocate: ``max_memory=``, else ``$BPNET_MAX_MEMORY``,
else 2 GiB; sizes such as ``"8G"``; and the message for a file over it."""

from __future__ import annotations

import math
import os
import re
from typing import Any

#: What loading one model file (or predicting with it) may allocate, unless
#: ``max_memory=`` or the environment variable ``BPNET_MAX_MEMORY`` says more.
MAX_MEMORY = 2**31  # 2 GiB
MAX_MEMORY_ENV = "BPNET_MAX_MEMORY"
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(text: str, name: str) -> int:
    """``"8G"``, ``"512MiB"``, ``"3e9"`` -> bytes (binary units); a
    ``ValueError`` naming ``name`` for anything else."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
    try:
        value = float(m.group(1)) * _UNITS[m.group(2).lower()] if m else -1.0
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(
            f"{name}: expected a size in bytes such as 4G, 512M or 3000000000, "
            f"got {text!r}"
        )
    return int(value)


def memory_budget(max_memory: Any = None) -> int:
    """The bytes a load may allocate: ``max_memory`` (an int, or a size such
    as ``"8G"``), else ``$BPNET_MAX_MEMORY``, else ``MAX_MEMORY`` (2 GiB)."""
    if max_memory is None:
        env = os.environ.get(MAX_MEMORY_ENV)
        return MAX_MEMORY if not env else parse_bytes(env, MAX_MEMORY_ENV)
    if isinstance(max_memory, str):
        return parse_bytes(max_memory, "max_memory")
    if isinstance(max_memory, bool) or not isinstance(max_memory, int):
        raise TypeError(f"max_memory: expected a number of bytes, got {max_memory!r}")
    if max_memory < 1:
        raise ValueError(f"max_memory: expected a positive number, got {max_memory}")
    return max_memory


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


LIBRARY_WAY = "max_memory= (bpnet.load, bpnet.read_checkpoint)"


def over_budget(what: str, need: float, budget: int, ways: str = LIBRARY_WAY) -> str:
    """The message for ``what`` asking ``need`` bytes of a ``budget``; ``ways``
    names the argument or flag that raises it (besides the variable)."""
    ways = f"{ways} or " if ways else ""
    return (
        f"{what} asks for about {human_bytes(need)} of memory, over the budget of "
        f"{human_bytes(budget)}; if you trust it, raise the budget with {ways}"
        f"the environment variable {MAX_MEMORY_ENV} (e.g. {MAX_MEMORY_ENV}=16G)"
    )
