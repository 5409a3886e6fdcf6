"""im2col and its adjoint as gathers, on the Array API only (Deep Learning from
Scratch ch. 7's ``im2col``/``col2im``).

``im2col`` lays every (kh, kw) window of an NCHW batch out as a row, so that a
convolution is one matrix product: ``take`` along the flattened sample with a
precomputed index array, laid out (N, C * KH * KW, OH * OW) so that the
product with the weights comes out in NCHW order with no transpose. Its
adjoint, ``col2im``, sums the window entries back onto the pixels they came
from. The standard has no scatter-add, so ``col2im``
is a gather too: for every pixel the index array lists the (at most
``ceil(KH / stride) * ceil(KW / stride)``) window entries that read it, and the
gathered values are summed. Positions outside the image (zero padding) and
missing contributors point at one zero appended to the row.

The index arrays depend on the sample's shape only, not on the batch size;
they are made with the namespace's own ``arange`` on the arrays' device.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from array_api_compat import device, is_lazy_array, is_writeable_array


class Geometry(NamedTuple):
    """A sliding window over (C, H, W) samples: kernel, stride, padding and
    the output's height and width."""

    C: int
    H: int
    W: int
    KH: int
    KW: int
    stride: int
    pad: int
    OH: int
    OW: int

    @property
    def needs_zero(self) -> bool:
        """Whether some window entry reads padding, or some pixel is read by
        fewer windows than the most-read one: the gathers then need a zero."""
        return self.pad > 0 or not (self.stride == self.KH == self.KW)


def geometry(
    layer: Any, shape: Any, kernel: tuple[int, int], stride: int, pad: int
) -> Geometry:
    """The window geometry of ``layer`` on samples of ``shape`` (C, H, W);
    a ValueError naming the layer, what it expects and what it was given when
    the shape does not fit."""
    if not isinstance(shape, tuple) or len(shape) != 3:
        raise ValueError(
            f"{layer!r} takes (channels, height, width) samples, but receives "
            f"{_shown(shape)} from the layer before it; put "
            "Reshape((channels, height, width)) before it"
        )
    C, H, W = shape
    KH, KW = kernel
    for name, size, k in (("height", H, KH), ("width", W, KW)):
        span = size + 2 * pad
        if k > span:
            raise ValueError(
                f"{layer!r}: the window {name} {k} is larger than the input's "
                f"{name} {size}"
                + (f" plus 2 * padding {pad}" if pad else "")
                + f" (input shape {shape})"
            )
        if (span - k) % stride:
            raise ValueError(
                f"{layer!r}: the stride {stride} does not divide the input {name} "
                f"{size}"
                + (f" + 2 * padding {pad}" if pad else "")
                + f" - window {k} = {span - k} (input shape {shape}); expected a "
                "multiple of the stride"
            )
    OH = (H + 2 * pad - KH) // stride + 1
    OW = (W + 2 * pad - KW) // stride + 1
    return Geometry(C, H, W, KH, KW, stride, pad, OH, OW)


def _shown(shape: Any) -> str:
    if isinstance(shape, tuple):
        return f"samples of shape {shape}"
    return f"{shape} features"


def window_indices(xp: Any, g: Geometry, device: Any) -> Any:
    """(C * KH * KW * OH * OW,) positions in a flattened (C * H * W) sample,
    row-major over (c, kh, kw, oh, ow); a position in the padding is
    ``C * H * W``, the appended zero."""
    c, kh = _axis(xp, g.C, 0, device), _axis(xp, g.KH, 1, device)
    kw = _axis(xp, g.KW, 2, device)
    oh, ow = _axis(xp, g.OH, 3, device), _axis(xp, g.OW, 4, device)
    h = oh * g.stride + kh - g.pad
    w = ow * g.stride + kw - g.pad
    flat = c * (g.H * g.W) + h * g.W + w
    if g.pad:
        inside = (h >= 0) & (h < g.H) & (w >= 0) & (w < g.W)
        flat = xp.where(inside, flat, xp.full_like(flat, g.C * g.H * g.W))
    flat = xp.broadcast_to(flat, (g.C, g.KH, g.KW, g.OH, g.OW))
    return xp.reshape(flat, (-1,))


def index_dtype(xp: Any, device: Any) -> Any:
    """The namespace's default indexing dtype (the standard's inspection API):
    int64 where the library has it, int32 on JAX without 64-bit mode, which
    would otherwise warn that it truncates a requested int64."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
    except (AttributeError, KeyError, TypeError):
        return xp.int64


def _axis(xp: Any, n: int, at: int, device: Any) -> Any:
    """``arange(n)`` along axis ``at`` of five."""
    shape = [1] * 5
    shape[at] = n
    arange = xp.arange(n, dtype=index_dtype(xp, device), device=device)
    return xp.reshape(arange, tuple(shape))


def pixel_indices(xp: Any, g: Geometry, device: Any) -> tuple[Any, int]:
    """The adjoint's gather: (C * H * W * S,) positions in a flattened
    (C * KH * KW * OH * OW) column block, S per pixel (the window entries
    that read it, row-major over (c, h, w, slot)), and S. A missing entry is
    ``C * KH * KW * OH * OW``, the appended zero.

    The entries that read pixel h are ``kh = (h + pad) % stride + i * stride``
    for ``i = 0, 1, ...`` while ``kh < KH``, in the window ``oh = (h + pad -
    kh) / stride`` when ``0 <= oh < OH``; the same along the width."""
    s = g.stride
    SI, SJ = math.ceil(g.KH / s), math.ceil(g.KW / s)
    c, h = _axis(xp, g.C, 0, device), _axis(xp, g.H, 1, device)
    w = _axis(xp, g.W, 2, device)
    i, j = _axis(xp, SI, 3, device), _axis(xp, SJ, 4, device)
    kh = (h + g.pad) % s + i * s
    kw = (w + g.pad) % s + j * s
    oh = (h + g.pad - kh) // s
    ow = (w + g.pad - kw) // s
    flat = ((c * g.KH + kh) * g.KW + kw) * (g.OH * g.OW) + oh * g.OW + ow
    if g.needs_zero:
        valid = (kh < g.KH) & (kw < g.KW) & (oh >= 0) & (oh < g.OH)
        valid = valid & (ow >= 0) & (ow < g.OW)
        zero = g.C * g.KH * g.KW * g.OH * g.OW
        flat = xp.where(valid, flat, xp.full_like(flat, zero))
    flat = xp.broadcast_to(flat, (g.C, g.H, g.W, SI, SJ))
    return xp.reshape(flat, (-1,)), SI * SJ


def with_zero(xp: Any, rows: Any) -> Any:
    """``rows`` (n, L) with a zero column appended: position L reads 0."""
    # shaped from the data, not from rows.shape[0]: the batch may be unknown
    # while a graph is traced (ONNX export)
    return xp.concat((rows, xp.zeros_like(rows[:, :1])), axis=1)


def tiles(g: Geometry) -> bool:
    """Whether the windows tile the image (stride = kernel, no padding): then
    im2col and col2im are a reshape and a transpose, with no gather."""
    return g.pad == 0 and g.stride == g.KH == g.KW


def im2col(xp: Any, x: Any, g: Geometry, idx: Any) -> Any:
    """(N, C, H, W) -> (N, C * KH * KW, OH * OW): each column one window, so
    that ``W @ cols``, W as an (F, C * KH * KW) matrix, is the convolution in
    NCHW order. ``idx`` is ``window_indices``' (unused for tiles, see
    ``tiles``)."""
    if tiles(g):
        x = xp.reshape(x, (-1, g.C, g.OH, g.KH, g.OW, g.KW))
        x = xp.permute_dims(x, (0, 1, 3, 5, 2, 4))
    else:
        rows = xp.reshape(x, (-1, g.C * g.H * g.W))
        if g.pad:
            rows = with_zero(xp, rows)
        x = xp.take(rows, idx, axis=1)
    return xp.reshape(x, (-1, g.C * g.KH * g.KW, g.OH * g.OW))


def col2im(xp: Any, cols: Any, g: Geometry, idx: Any, slots: int) -> Any:
    """The adjoint of ``im2col``: (N, C * KH * KW, OH * OW) -> (N, C, H, W),
    each pixel the sum of the window entries that read it. ``idx`` and
    ``slots`` are ``pixel_indices``' (unused for tiles)."""
    if tiles(g):
        cols = xp.reshape(cols, (-1, g.C, g.KH, g.KW, g.OH, g.OW))
        cols = xp.permute_dims(cols, (0, 1, 4, 2, 5, 3))
        return xp.reshape(cols, (-1, g.C, g.H, g.W))
    rows = xp.reshape(cols, (-1, g.C * g.KH * g.KW * g.OH * g.OW))
    if g.needs_zero:
        rows = with_zero(xp, rows)
    gathered = xp.take(rows, idx, axis=1)
    if slots > 1:
        gathered = xp.reshape(gathered, (-1, g.C * g.H * g.W, slots))
        gathered = xp.sum(gathered, axis=2)
    return xp.reshape(gathered, (-1, g.C, g.H, g.W))


class IndexCache:
    """The index arrays of one layer, per array type, device and sample shape,
    kept only where arrays are eager and writable (NumPy, PyTorch, CuPy):
    under a tracer (JAX, ndonnx) an array kept from one call would outlive
    its trace, so they are made again each call there. Copies of a layer may
    share one cache: the key keeps their libraries and devices apart."""

    def __init__(self) -> None:
        self._kept: dict[Any, Any] = {}

    def get(self, key: Any, x: Any, make: Any) -> Any:
        if is_lazy_array(x) or not is_writeable_array(x):
            return make()
        key = (type(x), str(device(x)), key)
        value = self._kept.get(key)
        if value is None:
            value = self._kept[key] = make()
        return value
