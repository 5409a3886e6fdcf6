"""Activation layers: elementwise functions and their derivatives, each
forward beside its backward. Listed by name in ``ACTIVATIONS`` (relu,
leaky_relu, sigmoid, tanh) and by class name in ``LAYERS``.
"""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.nn.functional import sigmoid
from bpnet.nn.layers import LAYERS, Layer
from bpnet.nn.registry import Registry

ACTIVATIONS = Registry("activation")


@LAYERS.register()
@ACTIVATIONS.register("relu")
class ReLU(Layer):
    """max(x, 0); its gradient passes where x > 0."""

    init_name = "he"

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        # A 0/1 mask in x's dtype: two multiplies are cheaper than where().
        self.mask = self.xp.astype(x > 0, x.dtype)
        return x * self.mask

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        return dy * self.mask


@LAYERS.register()
@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(Layer):
    """x where x > 0, alpha * x elsewhere."""

    init_name = "he"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = check.check_fraction(alpha, "LeakyReLU alpha")

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        self.mask = x > 0
        return self.xp.where(self.mask, x, self.alpha * x)

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        return self.xp.where(self.mask, dy, self.alpha * dy)

    def get_config(self) -> dict:
        return {"type": "LeakyReLU", "alpha": self.alpha}

    def __repr__(self) -> str:
        return f"LeakyReLU({self.alpha})"


@LAYERS.register()
@ACTIVATIONS.register("sigmoid", aliases=("logistic",))
class Sigmoid(Layer):
    """1 / (1 + exp(-x)); dy * y * (1 - y)."""

    init_name = "glorot"

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        return dy * self.y * (1.0 - self.y)


@LAYERS.register()
@ACTIVATIONS.register("tanh")
class Tanh(Layer):
    """tanh(x); dy * (1 - y**2)."""

    init_name = "glorot"

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        return dy * (1.0 - self.y * self.y)


def activation(name: str) -> Layer:
    """An activation layer by name: relu, leaky_relu, sigmoid (logistic), tanh."""
    key = name.lower() if isinstance(name, str) else name
    return ACTIVATIONS.create(key)
