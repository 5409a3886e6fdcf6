"""Layers with explicit backprop: each forward keeps what its backward needs.

A layer's ``forward(x, training)`` returns its output; ``backward(dy)`` returns
the gradient for its input and, for a layer that learns, fills ``grads`` with
its parameters' gradients, by the names the layer declares (see ``Layer``).

A layer works on its own too, as Deep Learning from Scratch uses it
(``relu = ReLU(); out = relu.forward(x); dx = relu.backward(dout)``): outside
a ``Sequential`` its first ``forward`` builds it for the input's library,
device and dtype (``build_alone``).

The ``Layer`` base class is in ``bpnet.nn.layer_base``; here are the registry
of layers (``LAYERS``), ``Dense`` and ``Dropout``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from bpnet.nn.initializers import Initializer, get_initializer
from bpnet.nn.layer_base import (  # noqa: F401 (also imported from here)
    Layer,
    folds_sgd,
    hands_out_fresh_grads,
    writes_grad_out,
)
from bpnet.nn.mutation import writer, writes_in_place
from bpnet.nn.registry import Registry

LAYERS = Registry("layer")


@LAYERS.register()
class Dense(Layer):
    """Affine layer ``y = x @ W + b``; W has shape (in, out), b shape (out,).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    init : str or callable, optional
        ``"he"``, ``"glorot"``, ``"uniform"`` (ex4's +-0.12) or a callable
        ``(fan_in, fan_out, rng) -> (W, b or None)``. Default: He before a
        ReLU-family activation, Glorot otherwise.
    """

    param_names = ("W", "b")
    decay_names = frozenset({"W"})
    fresh_grads = True
    writes_grad_out = True
    flat_only = True

    def __init__(self, n_in: int, n_out: int, init: str | Initializer | None = None):
        super().__init__()
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise ValueError(
                    f"Dense {name}: expected a positive integer, got {v!r}"
                )
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.init = None if init is None else get_initializer(init)
        self._init_name = init if isinstance(init, str) or init is None else "custom"
        self.x: Any = None
        self._sparse = False

    def build(self, n_in: int, model: Any, init: Initializer | None = None) -> int:
        super().build(n_in, model)  # checks that the widths chain
        self.matmul = model.backend.matmul
        self.matmul_into = model.backend.matmul_into
        self.backend = model.backend  # its sparse products, for a sparse input
        self._takes_sparse = model.backend.takes_sparse
        self._ones: dict[int, Any] = {}  # batch size -> (1, batch) ones
        self.device = model.backend.device
        fn = self.init or init or model.default_initializer(self)
        W, b = fn(self.n_in, self.n_out, model.host_rng)
        be, dt = model.backend, model.dtype
        self.W = be.asarray(W, dtype=dt)
        if b is None:
            with be.context():
                self.b = self.xp.zeros((self.n_out,), dtype=dt, device=be.device)
        else:
            self.b = be.asarray(b, dtype=dt)
        self.grads = {}
        return self.n_out

    def output_width(self, n_in: int) -> int:
        super().output_width(n_in)
        return self.n_out

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        return {"W": (self.n_in, self.n_out), "b": (self.n_out,)}

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        self.x = x
        self._sparse = self._takes_sparse and self.backend.is_sparse(x)
        if self._sparse:  # the first layer of a sparse X: never made dense
            z = self.backend.sparse_matmul(x, self.W)
        else:
            z = self.matmul(x, self.W)
        z += self.b  # in place on the fresh product: one temporary fewer
        return z

    def _weight_gradient(self, dy: Any, out: Any = None) -> Any:
        """``x.T @ dy``, written into ``out`` when given."""
        if not self._sparse:
            if out is None:
                return self.matmul(self.x.T, dy)
            return self.matmul_into(self.x.T, dy, out)
        g = self.backend.sparse_rmatmul(self.x, dy)
        if out is None:
            return g
        return writer(out).set(out, g)

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        db = self.xp.reshape(self._column_sums(dy), (-1,))
        out = self.grad_out
        if out is None:
            self.grads = {"W": self._weight_gradient(dy), "b": db}
        else:  # written where the caller wants them: no copy afterwards
            out["b"] = writer(out["b"]).set(out["b"], db)
            out["W"] = self._weight_gradient(dy, out["W"])
            self.grads = {"W": out["W"], "b": out["b"]}
        # The first layer's input gradient is never used: skip its matmul.
        return self.matmul(dy, self.W.T) if need_dx else None

    def backward_sgd(
        self, dy: Any, need_dx: bool, lr: float, decay: float = 1.0
    ) -> Any:
        """``backward`` and a plain SGD step in one, in place, with no gradient
        arrays: ``W <- decay * W - lr * x.T @ dy`` as one ``matmul_into``,
        ``b <- b - lr * sum(dy, axis=0)``; ``grads`` is left as it was. Returns
        the input's gradient, from the weights before the step."""
        dx = self.matmul(dy, self.W.T) if need_dx else None
        if self._sparse:
            step = self.backend.sparse_rmatmul(self.x, dy)
            step *= -lr
            w = writer(self.W)
            if decay != 1.0:
                self.W = w.mul(self.W, decay)
            self.W = w.add(self.W, step)
        else:
            self.W = self.matmul_into(self.x.T, dy, self.W, -lr, decay)
        db = self._column_sums(dy)
        db *= -lr
        # a view: cheaper than reshape, same numbers
        self.b = writer(self.b).add(self.b, db[0, ...])
        return dx

    def _column_sums(self, dy: Any) -> Any:
        # Column sums as a product with ones: several times faster than a sum
        # over axis 0 for these shapes on CPU BLAS, and one more GEMM on GPUs.
        # Ones kept for a fit's two batch sizes (full, last): the first epoch
        # makes both, so a graph recorded after it allocates none to outlive it.
        # Kept for arrays written in place only: immutable ones may be a
        # trace's (jax.jit), which must not outlive it.
        n = dy.shape[0]
        cache = self._ones
        ones = cache.get(n)
        if ones is None:
            ones = self.xp.ones((1, n), dtype=dy.dtype, device=self.device)
            if writes_in_place(dy):
                if len(cache) >= 2:
                    del cache[next(iter(cache))]
                cache[n] = ones
        return self.matmul(ones, dy)

    def get_config(self) -> dict:
        config = {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out}
        if isinstance(self._init_name, str) and self._init_name != "custom":
            config["init"] = self._init_name  # what an unbuilt copy draws with
        return config

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out})"


@LAYERS.register()
class Dropout(Layer):
    """Inverted dropout: in training keep each unit with probability 1 - rate
    and scale by 1 / (1 - rate); identity in inference.
    """

    init_transparent = True

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not 0 <= rate < 1
            or math.isnan(rate)
        ):
            raise ValueError(f"Dropout rate: expected a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.mask: Any = None
        self.freeze_mask = False  # reuse the last mask (gradient checks)

    def build(self, n_in: int, model: Any) -> int:
        super().build(n_in, model)
        self._model = model
        return n_in

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        if not training or self.rate == 0.0:
            self.mask = None
            return x
        if not (self.freeze_mask and self.mask is not None):
            u = self._model.device_rng.uniform(tuple(x.shape), x.dtype)
            self.mask = self.xp.astype(u >= self.rate, x.dtype) * (
                1.0 / (1.0 - self.rate)
            )
        return x * self.mask

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        return dy if self.mask is None else dy * self.mask

    def get_config(self) -> dict:
        return {"type": "Dropout", "rate": self.rate}

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


def input_gradients_needed(layers: list[Layer]) -> list[bool]:
    """Per layer, whether its ``backward`` must return its input's gradient:
    whether some layer before it learns (a ``Reshape`` first, or a frozen
    prefix, needs none)."""
    out, learns = [], False
    for layer in layers:
        out.append(learns)
        learns = learns or bool(layer.param_names or layer._params)
    return out


def layer_from_config(config: dict) -> Layer:
    """Rebuild a layer from ``Layer.get_config()``."""
    return LAYERS.from_config(config)


def declared_shapes(layers: list[Layer], width: int) -> list[tuple[int, dict, dict]]:
    """Each layer's (input width, parameter shapes, buffer shapes by name), as
    its class declares them for the width it receives, the first layer
    receiving ``width``: what a model file must hold, computed without
    building an array. A width a layer cannot take is a ValueError naming
    ``layers[i]``."""
    out = []
    for i, layer in enumerate(layers):
        out.append((width, layer.parameter_shapes(width), layer.buffer_shapes(width)))
        try:
            width = layer.output_width(width)
        except ValueError as exc:
            raise ValueError(f"layers[{i}]: {exc}") from None
    return out
