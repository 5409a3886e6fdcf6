"""Numerically stable building blocks the Array API standard leaves out.

Written once here, used by the layers and the losses: max-shifted log-sum-exp,
softmax, softplus through ``logaddexp``, a sigmoid that never overflows and
``xlogy`` (0 where x is 0).
"""

from __future__ import annotations

from typing import Any

from array_api_compat import device

from bpnet.nn._namespace import namespace
from bpnet.nn.mutation import writes_in_place

_ONES: dict[tuple, Any] = {}


def row_sums(z: Any) -> Any:
    """Sums along the rows of a 2-D ``z``, as a column (n, 1): the product with
    a column of ones. For a few columns this is several times faster than a
    sum over axis 1 on NumPy (which reduces row by row); the ones are kept per
    array type, dtype, width and device, for arrays written in place only: a
    library of immutable arrays may be tracing (``jax.jit``), and a kept
    tracer would outlive its trace."""
    dev = device(z)  # not z.device: NumPy 1.x arrays have none
    key = (type(z), z.dtype, z.shape[1], dev)
    ones = _ONES.get(key)
    if ones is None:
        xp = namespace(z)
        ones = xp.ones((z.shape[1], 1), dtype=z.dtype, device=dev)
        if writes_in_place(z):
            _ONES[key] = ones
    return z @ ones


def logsumexp(z: Any, axis: int = -1) -> Any:
    """log(sum(exp(z))) along ``axis``, shifted by the max so it never overflows."""
    xp = namespace(z)
    m = xp.max(z, axis=axis, keepdims=True)
    s = xp.sum(xp.exp(z - m), axis=axis, keepdims=True)
    return xp.squeeze(m + xp.log(s), axis=axis)


def softmax(z: Any, axis: int = -1) -> Any:
    """exp(z) / sum(exp(z)) along ``axis``, max-shifted."""
    xp = namespace(z)
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def softplus(z: Any) -> Any:
    """log(1 + exp(z)) = logaddexp(0, z), exact for large ``abs(z)``."""
    xp = namespace(z)
    return xp.logaddexp(z, 0.0)


def sigmoid(z: Any) -> Any:
    """1 / (1 + exp(-z)) as exp(-softplus(-z)): no overflow, full precision."""
    xp = namespace(z)
    return xp.exp(-xp.logaddexp(-z, 0.0))


def xlogy(x: Any, y: Any) -> Any:
    """x * log(y), and 0 where x == 0 (whatever y is there), as scipy's xlogy."""
    xp = namespace(x)
    zero = x == 0
    return xp.where(zero, 0.0, x * xp.log(xp.where(zero, 1.0, y)))


def one_hot(labels: Any, n_classes: int, dtype: Any) -> Any:
    """(n,) integer labels -> (n, n_classes) one-hot matrix on the labels' device."""
    xp = namespace(labels)
    classes = xp.arange(n_classes, dtype=labels.dtype, device=device(labels))
    return xp.astype(xp.reshape(labels, (-1, 1)) == classes, dtype)
