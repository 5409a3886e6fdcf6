"""Max and average pooling on NCHW batches (Deep Learning from Scratch ch. 7's
``Pooling``), each forward beside its backward: the windows of every channel
laid out as rows by ``im2col``, reduced along the row; the backward puts each
row's gradient back with ``col2im``."""

from __future__ import annotations

from typing import Any

from array_api_compat import device as device_of

from bpnet.nn.conv import pair, positive_int, shown_pair
from bpnet.nn.im2col import (
    IndexCache,
    col2im,
    geometry,
    im2col,
    index_dtype,
    pixel_indices,
    tiles,
    window_indices,
)
from bpnet.nn.layers import LAYERS, Layer


class _Pool(Layer):
    """A reduction over each (pool_size) window of each channel."""

    def __init__(self, pool_size: Any, stride: int | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.pool = pair(pool_size, f"{name} pool_size")
        self.stride = (
            self.pool[0] if stride is None else positive_int(stride, f"{name} stride")
        )
        if stride is None and self.pool[0] != self.pool[1]:
            raise ValueError(
                f"{name} stride: expected an integer for a pool_size of "
                f"{self.pool} (the default, the pool size, needs a square pool)"
            )
        self._indices = IndexCache()

    def _geometry(self, shape: Any) -> Any:
        return geometry(self, shape, self.pool, self.stride, 0)

    def output_width(self, n_in: Any) -> tuple[int, int, int]:
        g = self._geometry(n_in)
        return (g.C, g.OH, g.OW)

    def _windows(self, x: Any) -> list[Any]:
        """The window entries of (N, C, H, W): PH * PW arrays, the k-th
        holding entry k (row-major) of every window. Where the windows tile
        the image they are strided views of ``x`` (no copy); otherwise slices
        of im2col's (N * C, PH * PW, OH * OW)."""
        xp = self.xp
        g = self._geometry(tuple(x.shape[1:]))
        # shapes with the batch as -1: it may be unknown while a graph is traced
        self.shape, self.g = (-1, *x.shape[1:]), g._replace(C=1)  # channels as samples
        if tiles(g):
            return [
                x[:, :, i :: g.KH, j :: g.KW] for i in range(g.KH) for j in range(g.KW)
            ]
        rows = xp.reshape(x, (-1, 1, g.H, g.W))
        cols = im2col(xp, rows, self.g, self._index(x, "window"))
        return [cols[:, k, :] for k in range(cols.shape[1])]

    def _back(self, dcols: Any) -> Any:
        """The gradient for each window's entries -> the input's gradient."""
        g = self.g
        slots = -(-g.KH // g.stride) * -(-g.KW // g.stride)
        dx = col2im(self.xp, dcols, g, self._index(dcols, "pixel"), slots)
        return self.xp.reshape(dx, self.shape)

    def _index(self, x: Any, which: str) -> Any:
        g, xp, dev = self.g, self.xp, device_of(x)
        if tiles(g):
            return None
        make = window_indices if which == "window" else pixel_indices
        value = self._indices.get((which, g), x, lambda: make(xp, g, dev))
        return value if which == "window" else value[0]

    def _out(self, y: Any) -> Any:
        return self.xp.reshape(y, (-1, self.shape[1], self.g.OH, self.g.OW))

    def get_config(self) -> dict:
        return {
            "type": type(self).__name__,
            "pool_size": shown_pair(self.pool),
            "stride": self.stride,
        }

    def __repr__(self) -> str:
        extra = "" if (self.stride,) * 2 == self.pool else f", stride={self.stride}"
        return f"{type(self).__name__}({shown_pair(self.pool)}{extra})"


@LAYERS.register()
class MaxPool2D(_Pool):
    """The largest value of each window, per channel.

    Parameters
    ----------
    pool_size : int or (int, int)
        The window, (PH, PW).
    stride : int, optional
        Default: the pool size (windows side by side).

    Takes (C, H, W) samples, gives (C, OH, OW) with ``OH = (H - PH) / stride
    + 1``, which must come out whole. Backward: each window's gradient goes
    to its maximum; where several entries tie for the maximum, all of it goes
    to the first in row-major order (``argmax``), as Deep Learning from
    Scratch's ``Pooling`` and PyTorch's ``max_pool2d`` do.
    """

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        xp = self.xp
        entries = self._windows(x)
        # the maximum and the first entry that reaches it, entry by entry
        # (elementwise over the windows: faster than a reduction along a
        # short axis, and the first of tied maxima by construction)
        best = entries[0]
        dev = device_of(x)
        itype = xp.int8 if len(entries) < 128 else index_dtype(xp, dev)
        first = xp.zeros_like(best, dtype=itype)
        for k in range(1, len(entries)):
            higher = entries[k] > best
            best = xp.where(higher, entries[k], best)
            first = xp.where(higher, xp.asarray(k, dtype=itype, device=dev), first)
        self.first, self.n_window = first, len(entries)
        return self._out(best)

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        xp = self.xp
        g, first = self.g, self.first
        first = xp.reshape(first, (-1, 1, g.OH * g.OW))
        slot = xp.arange(self.n_window, dtype=first.dtype, device=device_of(dy))
        hit = first == xp.reshape(slot, (1, -1, 1))
        dy = xp.reshape(dy, (-1, 1, g.OH * g.OW))
        return self._back(xp.astype(hit, dy.dtype) * dy)


@LAYERS.register()
class AvgPool2D(_Pool):
    """The mean of each window, per channel; parameters and shapes as
    ``MaxPool2D``. Backward: each window's gradient, divided by its size,
    goes to every entry of the window."""

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        entries = self._windows(x)
        self.n_window = len(entries)
        total = entries[0]
        for entry in entries[1:]:
            total = total + entry
        return self._out(total * (1.0 / self.n_window))

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        xp = self.xp
        dy = xp.reshape(dy, (-1, 1, self.g.OH * self.g.OW)) * (1.0 / self.n_window)
        return self._back(
            xp.broadcast_to(dy, (dy.shape[0], self.n_window, dy.shape[2]))
        )
