"""Computational-graph gates of "Deep Learning from Scratch", ch. 5.

``Multiply`` and ``Add`` nodes on arrays: ``forward(x, y)`` keeps what the
backward needs; ``backward(dout)`` returns ``(dx, dy)``, each summed back to
its input's shape when the forward broadcast it.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched; a
    Python number (the book's own examples use them) passes as it is."""
    if not hasattr(grad, "shape"):
        return grad
    xp = array_namespace(grad)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = xp.sum(grad, axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = xp.sum(grad, axis=axes, keepdims=True)
    return grad


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(getattr(x, "shape", ()))


def _forwarded(gate: Any, kept: str) -> None:
    if not hasattr(gate, kept):
        raise RuntimeError(
            f"{type(gate).__name__}.backward: call forward first (it keeps what "
            "backward needs)"
        )


class Multiply:
    """z = x * y; dz/dx = y, dz/dy = x."""

    def forward(self, x: Any, y: Any) -> Any:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        _forwarded(self, "x")
        dx = dout * self.y
        dy = dout * self.x
        return unbroadcast(dx, _shape(self.x)), unbroadcast(dy, _shape(self.y))


class Add:
    """z = x + y; the gradient passes through to both inputs unchanged."""

    def forward(self, x: Any, y: Any) -> Any:
        self.x_shape, self.y_shape = _shape(x), _shape(y)
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        _forwarded(self, "x_shape")
        # two new arrays, as the book's dout * 1: updating one in place must
        # not change the other
        dx, dy = dout * 1, dout * 1
        return unbroadcast(dx, self.x_shape), unbroadcast(dy, self.y_shape)
