"""The one update path for state that lasts beyond a step.

Parameters, optimizer moments, buffers (BatchNorm's running statistics), the
learning rate's 0-D array, an epoch's sums and its order buffer all change
through a ``Writer``: in place where the array library allows it (NumPy,
CuPy, PyTorch, array-api-strict), a new array otherwise (JAX, ndonnx, dask,
and JAX's tracers under ``jax.jit``). Either way the result is returned and
the caller stores it where the old array was::

    w = writer(p)
    p = w.sub(p, lr * g)       # p -= lr * g, or p = p - lr * g
    m = w.set(m, 0.0)          # m[...] = 0.0, or a new array of m's shape

Python's ``p -= x`` alone is not enough: on an array type without in-place
operators it silently binds the local name to a new array and the owner
keeps the old one, so a step would change nothing.
"""

from __future__ import annotations

import operator
from typing import Any

import array_api_compat
import array_api_extra as xpx

__all__ = ["IN_PLACE", "NEW_ARRAYS", "Writer", "writer", "writes_in_place"]

# array type -> True/False, or None for a type whose arrays differ one from
# another (NumPy's read-only ones: memory maps, broadcast views)
_BY_TYPE: dict[type, bool | None] = {}
_UNSEEN = object()


def writes_in_place(x: Any) -> bool:
    """Whether ``x`` is written in place (array-api-compat's
    ``is_writeable_array``, and not ``is_lazy_array``: a copy into an array
    that records a graph, as ndonnx's and dask's, would be one more node),
    decided once per array type where the answer holds for every array of
    it."""
    known = _BY_TYPE.get(type(x), _UNSEEN)
    if known is _UNSEEN:
        known = _learn(x)
    if known is None:
        return bool(x.flags.writeable)
    return known


def _learn(x: Any) -> bool | None:
    known = (
        None
        if array_api_compat.is_numpy_array(x)
        else bool(
            array_api_compat.is_writeable_array(x)
            and not array_api_compat.is_lazy_array(x)
        )
    )
    _BY_TYPE[type(x)] = known
    return known


class Writer:
    """Updates of a persistent array that return the array to keep.

    ``add``, ``sub``, ``mul``, ``div``: ``x op y`` written into ``x`` (and
    ``x`` returned) by ``IN_PLACE``, a new array by ``NEW_ARRAYS``. ``set``:
    ``x[...] = y`` (or ``x[idx] = y``), through array-api-extra's ``at`` on
    arrays that cannot be written.
    """

    in_place: bool

    def __init__(self, in_place: bool) -> None:
        self.in_place = in_place
        if in_place:
            self.add, self.sub = operator.iadd, operator.isub
            self.mul, self.div = operator.imul, operator.itruediv
        else:
            self.add, self.sub = operator.add, operator.sub
            self.mul, self.div = operator.mul, operator.truediv

    def set(self, x: Any, y: Any, idx: Any = Ellipsis) -> Any:
        """``x`` with ``x[idx] = y`` (every element by default)."""
        if self.in_place:
            x[idx] = y
            return x
        if idx is Ellipsis and isinstance(y, (int, float)):
            # every element one number: a filled array, one operation, where
            # ``at``'s scatter is indexing machinery run eagerly (3 ms a call
            # on JAX, three calls an epoch)
            xp = array_api_compat.array_namespace(x)
            dev = array_api_compat.device(x)
            return xp.full(x.shape, y, dtype=x.dtype, device=dev)
        return xpx.at(x, idx).set(y, copy=True)

    def __repr__(self) -> str:
        return "IN_PLACE" if self.in_place else "NEW_ARRAYS"


IN_PLACE = Writer(True)
NEW_ARRAYS = Writer(False)


def writer(x: Any) -> Writer:
    """``IN_PLACE`` for an array that can be written in place, else
    ``NEW_ARRAYS``."""
    return IN_PLACE if writes_in_place(x) else NEW_ARRAYS
