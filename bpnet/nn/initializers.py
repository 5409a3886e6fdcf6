"""Weight initializers: ex4's uniform +-epsilon, Glorot/Xavier and He.

Every initializer draws from the model's one host generator
(``backends.HostRandom``) so that CPU and GPU runs start from the same
numbers; the model copies the result to its device once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from backends import HostRandom

# (fan_in, fan_out, rng) -> (W of shape (fan_in, fan_out), b of shape (fan_out,)
# or None for zeros)
Initializer = Callable[[int, int, HostRandom], tuple[Any, Any]]


def uniform(epsilon: float = 0.12) -> Initializer:
    """ex4's randInitializeWeights: every entry, bias included, in [-eps, eps]."""

    def init(fan_in: int, fan_out: int, rng: HostRandom) -> tuple[Any, Any]:
        # ex4 draws a (out, in + 1) Theta, bias column first; drawing it the
        # same way keeps the numbers identical to the notebook's layout.
        theta = rng.uniform(-epsilon, epsilon, (fan_out, fan_in + 1))
        return theta[:, 1:].T.copy(), theta[:, 0].copy()

    init.__name__ = f"uniform({epsilon})"
    return init


def glorot(fan_in: int, fan_out: int, rng: HostRandom) -> tuple[Any, Any]:
    """Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, (fan_in, fan_out)), None


def he(fan_in: int, fan_out: int, rng: HostRandom) -> tuple[Any, Any]:
    """He normal: N(0, 2 / fan_in), for ReLU-family activations."""
    w = rng.normal(math.sqrt(2.0 / fan_in), (fan_in, fan_out))
    return w, None


INITIALIZERS: dict[str, Initializer] = {
    "uniform": uniform(0.12),
    "glorot": glorot,
    "xavier": glorot,
    "he": he,
}


def get_initializer(init: str | Initializer) -> Initializer:
    """Look up an initializer by name, or pass a callable through."""
    if callable(init):
        return init
    if isinstance(init, str) and init.lower() in INITIALIZERS:
        return INITIALIZERS[init.lower()]
    raise ValueError(
        f"init: expected one of {sorted(INITIALIZERS)} or a callable "
        f"(fan_in, fan_out, rng) -> (W, b), got {init!r}"
    )
