"""Convolution on NCHW batches, and the layers that change a sample's shape
(Deep Learning from Scratch ch. 7's ``Convolution``; ``Flatten``, ``Reshape``).

Between layers a sample's shape is an int (``n_features``) for Dense-style
layers and a tuple such as (channels, height, width) after ``Reshape``; the
network's data stay 2-D, (n, n_features), and a ``Reshape((1, 28, 28))`` first
makes images of 784-column rows.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from array_api_compat import device as device_of

from bpnet.nn.im2col import (
    IndexCache,
    col2im,
    geometry,
    im2col,
    pixel_indices,
    tiles,
    window_indices,
)
from bpnet.nn.initializers import Initializer, get_initializer
from bpnet.nn.layers import LAYERS, Layer


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each >= 1, as a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"{name}: expected an integer or (height, width), got {value!r}"
            )
        return positive_int(value[0], name), positive_int(value[1], name)
    v = positive_int(value, name)
    return v, v


def shown_pair(p: tuple[int, int]) -> Any:
    """A square pair as one int (the config and repr), else as a list."""
    return p[0] if p[0] == p[1] else list(p)


def sample_size(shape: Any) -> int:
    """The number of values in one sample of ``shape`` (an int or a tuple)."""
    return shape if isinstance(shape, int) else math.prod(shape)


@LAYERS.register()
class Conv2D(Layer):
    """2-D convolution (cross-correlation, as PyTorch's ``conv2d``) on NCHW
    input: ``y[n, f] = sum_c x[n, c] * W[f, c] + b[f]``.

    Parameters
    ----------
    filters : int
        F, the output channels.
    kernel_size : int or (int, int)
        KH and KW.
    stride : int, default 1
    padding : int, default 0
        Zeros added on every side.
    init : str or callable, optional
        As for Dense, called with ``fan_in = C * KH * KW`` and ``fan_out = F``
        (the im2col product's matrix, (C*KH*KW, F)); default He before a
        ReLU-family activation, Glorot otherwise. The bias starts at zero.

    Takes samples of shape (C, H, W); gives (F, OH, OW) with
    ``OH = (H + 2 * padding - KH) / stride + 1`` (and OW likewise), which must
    come out whole. Learns W of shape (F, C, KH, KW), which takes the l2
    penalty, and b of shape (F,).

    Forward: im2col (a gather with ``take``) to (N, C*KH*KW, OH*OW), then
    ``W @ cols`` with W as an (F, C*KH*KW) matrix, which is already in NCHW
    order. Backward: ``dW = sum_n dY_n @ cols_n^T`` (a batched product, summed),
    ``db = sum(dY)``, ``dx = col2im(W^T @ dY)``, col2im being a gather and a
    sum too (``bpnet.nn.im2col``).
    """

    param_names = ("W", "b")
    decay_names = frozenset({"W"})
    fresh_grads = True

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        stride: int = 1,
        padding: int = 0,
        init: str | Initializer | None = None,
    ) -> None:
        super().__init__()
        self.filters = positive_int(filters, "Conv2D filters")
        self.kernel = pair(kernel_size, "Conv2D kernel_size")
        self.stride = positive_int(stride, "Conv2D stride")
        self.padding = positive_int(padding, "Conv2D padding", minimum=0)
        self.init = None if init is None else get_initializer(init)
        self._init_name = init if isinstance(init, str) or init is None else "custom"
        self._indices = IndexCache()

    def _geometry(self, shape: Any) -> Any:
        return geometry(self, shape, self.kernel, self.stride, self.padding)

    def output_width(self, n_in: Any) -> tuple[int, int, int]:
        g = self._geometry(n_in)
        return (self.filters, g.OH, g.OW)

    def parameter_shapes(self, n_in: Any) -> dict[str, tuple[int, ...]]:
        C = n_in[0] if isinstance(n_in, tuple) else n_in
        return {"W": (self.filters, C, *self.kernel), "b": (self.filters,)}

    def build(
        self, n_in: Any, model: Any, init: Initializer | None = None
    ) -> tuple[int, int, int]:
        out = super().build(n_in, model)  # checks the shape
        C, (KH, KW), F = n_in[0], self.kernel, self.filters
        fn = self.init or init or model.default_initializer(self)
        Wt, b = fn(C * KH * KW, F, model.host_rng)  # (C*KH*KW, F), as a Dense's
        be, dt, xp = model.backend, model.dtype, self.xp
        Wt = be.asarray(Wt, dtype=dt)
        self.W = xp.reshape(xp.permute_dims(Wt, (1, 0)), (F, C, KH, KW))
        self.W = xp.asarray(self.W, copy=True)  # owned, C-contiguous
        if b is None:
            self.b = xp.zeros((F,), dtype=dt, device=be.device)
        else:
            self.b = be.asarray(b, dtype=dt)
        self.grads = {}
        return out

    def _index(self, x: Any, g: Any, which: str) -> Any:
        """The gather's index array for ``g`` (None where the windows tile)."""
        xp, dev = self.xp, device_of(x)
        if tiles(g):
            return None
        make = window_indices if which == "window" else pixel_indices
        value = self._indices.get((which, g), x, lambda: make(xp, g, dev))
        return value if which == "window" else value[0]

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        xp, F = self.xp, self.filters
        g = self._geometry(tuple(x.shape[1:]))
        cols = im2col(xp, x, g, self._index(x, g, "window"))  # (N, CKK, OH*OW)
        Wm = xp.reshape(self.W, (F, g.C * g.KH * g.KW))
        y = xp.matmul(Wm, cols) + xp.reshape(self.b, (F, 1))  # (N, F, OH*OW)
        self.cols, self.g = cols, g
        return xp.reshape(y, (-1, F, g.OH, g.OW))

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        xp, g, F = self.xp, self.g, self.filters
        dy = xp.reshape(dy, (-1, F, g.OH * g.OW))
        self.grads = {
            # per sample dy_n @ cols_n^T, summed: faster than one tensordot,
            # which copies both operands into a (F, N*L) x (N*L, CKK) product
            "W": xp.reshape(
                xp.sum(xp.matmul(dy, xp.matrix_transpose(self.cols)), axis=0),
                self.W.shape,
            ),
            "b": xp.sum(xp.sum(dy, axis=2), axis=0),
        }
        if not need_dx:
            return None
        Wm = xp.reshape(self.W, (F, g.C * g.KH * g.KW))
        dcols = xp.matmul(Wm.T, dy)  # (N, CKK, OH*OW)
        return col2im(xp, dcols, g, self._index(dy, g, "pixel"), _slots(g))

    def get_config(self) -> dict:
        config = {
            "type": "Conv2D",
            "filters": self.filters,
            "kernel_size": shown_pair(self.kernel),
            "stride": self.stride,
            "padding": self.padding,
        }
        if isinstance(self._init_name, str) and self._init_name != "custom":
            config["init"] = self._init_name
        return config

    def __repr__(self) -> str:
        extra = "" if self.stride == 1 else f", stride={self.stride}"
        extra += "" if self.padding == 0 else f", padding={self.padding}"
        return f"Conv2D({self.filters}, {shown_pair(self.kernel)}{extra})"


def _slots(g: Any) -> int:
    return math.ceil(g.KH / g.stride) * math.ceil(g.KW / g.stride)


@LAYERS.register()
class Flatten(Layer):
    """(n, C, H, W) or any (n, ...) -> (n, C * H * W); its backward reshapes
    back."""

    def output_width(self, n_in: Any) -> int:
        return sample_size(n_in)

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        # the batch as -1: it may be unknown while a graph is traced
        self.in_shape = (-1, *x.shape[1:])
        return self.xp.reshape(x, (-1, math.prod(x.shape[1:])))

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        return self.xp.reshape(dy, self.in_shape) if need_dx else None


@LAYERS.register()
class Reshape(Layer):
    """Each sample to ``shape``: ``Reshape((1, 28, 28))`` makes (n, 784) rows
    the (n, 1, 28, 28) images a ``Conv2D`` takes.

    Parameters
    ----------
    shape : tuple of int
        The shape of one sample (the batch axis is kept); it must hold as many
        values as the samples it receives. First in a network, it fixes the
        network's input width (``n_in``), as a first Dense does.
    """

    def __init__(self, shape: Any) -> None:
        super().__init__()
        if not isinstance(shape, (tuple, list)) or not shape:
            raise ValueError(
                f"Reshape shape: expected a tuple of positive integers, got {shape!r}"
            )
        self.shape = tuple(positive_int(s, "Reshape shape") for s in shape)
        # first in a network, it fixes the input width, as a Dense does
        self.n_in = math.prod(self.shape)

    def output_width(self, n_in: Any) -> Any:
        if sample_size(n_in) != math.prod(self.shape):
            raise ValueError(
                f"{self!r} makes samples of {math.prod(self.shape)} values, but "
                f"receives samples of {sample_size(n_in)} (shape {n_in}); expected "
                "a shape whose sizes multiply to the input width"
            )
        return self.shape[0] if len(self.shape) == 1 else self.shape

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        self.in_shape = (-1, *x.shape[1:])
        return self.xp.reshape(x, (-1, *self.shape))

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        return self.xp.reshape(dy, self.in_shape) if need_dx else None

    def get_config(self) -> dict:
        return {"type": "Reshape", "shape": list(self.shape)}

    def __repr__(self) -> str:
        return f"Reshape({self.shape})"
