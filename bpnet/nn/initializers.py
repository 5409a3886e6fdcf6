"""Weight initializers: ex4's uniform +-epsilon, Glorot/Xavier and He.

Every initializer draws from the model's one host generator
(``backends.HostRandom``) so that CPU and GPU runs start from the same
numbers; the model copies the result to its device once. Listed in
``INITIALIZERS``; any callable ``(fan_in, fan_out, rng) -> (W, b or None)``
works too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from backends import HostRandom
from bpnet.nn.registry import Registry

# (fan_in, fan_out, rng) -> (W of shape (fan_in, fan_out), b of shape (fan_out,)
# or None for zeros)
Initializer = Callable[[int, int, HostRandom], tuple[Any, Any]]

INITIALIZERS = Registry("init")


class _Init:
    """Base: an initializer with no settings."""

    def __call__(self, fan_in: int, fan_out: int, rng: HostRandom) -> tuple[Any, Any]:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"type": INITIALIZERS.name_of(self)}

    def __repr__(self) -> str:
        return f"{INITIALIZERS.name_of(self)}"


@INITIALIZERS.register("he")
class He(_Init):
    """He normal: N(0, 2 / fan_in), for ReLU-family activations."""

    def __call__(self, fan_in: int, fan_out: int, rng: HostRandom) -> tuple[Any, Any]:
        return rng.normal(math.sqrt(2.0 / fan_in), (fan_in, fan_out)), None


@INITIALIZERS.register("glorot", aliases=("xavier",))
class Glorot(_Init):
    """Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""

    def __call__(self, fan_in: int, fan_out: int, rng: HostRandom) -> tuple[Any, Any]:
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, (fan_in, fan_out)), None


@INITIALIZERS.register("uniform")
class Uniform(_Init):
    """ex4's randInitializeWeights: every entry, bias included, in [-eps, eps]."""

    def __init__(self, epsilon: float = 0.12) -> None:
        self.epsilon = float(epsilon)

    def __call__(self, fan_in: int, fan_out: int, rng: HostRandom) -> tuple[Any, Any]:
        # ex4 draws a (out, in + 1) Theta, bias column first; drawing it the
        # same way keeps the numbers identical to the notebook's layout.
        eps = self.epsilon
        theta = rng.uniform(-eps, eps, (fan_out, fan_in + 1))
        return theta[:, 1:].T.copy(), theta[:, 0].copy()

    def get_config(self) -> dict:
        return {"type": "uniform", "epsilon": self.epsilon}

    def __repr__(self) -> str:
        return f"uniform({self.epsilon})"


def get_initializer(init: str | Initializer) -> Initializer:
    """Look up an initializer by name, or pass a callable through."""
    if callable(init):
        return init
    key = init.lower() if isinstance(init, str) else None
    if key in INITIALIZERS:
        return INITIALIZERS.create(key)
    raise ValueError(
        f"init: expected one of {INITIALIZERS.names(aliases=True)} or a callable "
        f"(fan_in, fan_out, rng) -> (W, b), got {init!r}"
    )
