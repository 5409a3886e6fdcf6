"""Checks at the API boundary: bad input becomes one clear error here, before
any of it reaches a matmul. Host data is checked with NumPy; arrays already on
the model's device are checked there, with one synchronizing reduction.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np

_KIND_NAMES = {
    "b": "boolean",
    "i": "integer",
    "u": "unsigned integer",
    "c": "complex",
    "O": "object",
    "U": "string",
    "S": "bytes",
    "V": "structured",
    "M": "datetime",
    "m": "timedelta",
}


def _describe(x: Any) -> str:
    try:
        xp = array_api_compat.array_namespace(x)
        lib = xp.__name__.replace("array_api_compat.", "")
        return f"a {lib} array on device {array_api_compat.device(x)!r}"
    except TypeError:
        return type(x).__name__


def has_values(arr: Any) -> bool:
    """Whether ``arr``'s values can be read now (``bool(xp.all(...))``).

    Not for lazy arrays (array-api-compat's ``is_lazy_array``): the nodes of
    a graph being recorded (ndonnx, a JAX trace) have no values yet, and the
    checks of values are then left to whoever runs the graph; their shapes
    and dtypes are still checked.
    """
    if array_api_compat.is_jax_array(arr):
        # array-api-compat counts every JAX array as lazy; only a trace's
        # tracers are (jax is loaded wherever a JAX array exists)
        return not isinstance(arr, sys.modules["jax"].core.Tracer)
    return not array_api_compat.is_lazy_array(arr)


def to_host_or_device(x: Any, backend: Any, name: str) -> tuple[Any, bool]:
    """Return (array, on_device). Host inputs come back as NumPy arrays.

    Arrays of another library, or on another device than the backend's, are
    refused: silently moving them would hide a costly copy.
    """
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name}: masked arrays (numpy.ma) are not supported: the mask would be "
            f"ignored; fill the masked values ({name}.filled(value)) or drop "
            "those rows first"
        )
    if isinstance(x, np.ndarray):
        return x, False  # checked on the host, copied to the device once
    if backend.owns(x):
        return backend.plain(x), True
    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError:
        xp = None
    if xp is not None and not array_api_compat.is_numpy_namespace(xp):
        raise TypeError(
            f"{name}: expected a NumPy array or an array on the model's device "
            f"{backend.name!r}, got {_describe(x)}; move it with "
            f"backend.to_numpy() or build the model on that device"
        )
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name}: expected a 2-D array of numbers, got {x!r}")
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise TypeError(
            f"{name}: expected an array of numbers, got {type(x).__name__} ({exc})"
        ) from None
    return arr, False


def check_X(X: Any, backend: Any, dtype: Any, n_features: int, name: str = "X") -> Any:
    """Validate a design matrix and return it on the device in ``dtype``."""
    arr, on_device = to_host_or_device(X, backend, name)
    if on_device:
        xp = backend.xp
        if not xp.isdtype(arr.dtype, "real floating"):
            raise TypeError(
                f"{name}: expected a real floating-point array, got dtype "
                f"{arr.dtype}; cast it with xp.astype(X, xp.float32)"
            )
    elif arr.dtype.kind != "f":
        kind = _KIND_NAMES.get(arr.dtype.kind, str(arr.dtype))
        hint = (
            "; cast it, e.g. X.astype('float32') / 255 for pixel values"
            if arr.dtype.kind in "iub"
            else ""
        )
        raise TypeError(
            f"{name}: expected real floating-point values, got {kind} dtype "
            f"{arr.dtype}{hint}"
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D array (n_samples, {n_features}), got "
            f"{arr.ndim}-D array of shape {tuple(arr.shape)}"
            + (
                "; reshape a single sample with X.reshape(1, -1)"
                if arr.ndim == 1
                else ""
            )
        )
    n, d = arr.shape
    if n == 0:
        raise ValueError(
            f"{name}: expected at least one sample, got shape {tuple(arr.shape)}"
        )
    if d != n_features:
        raise ValueError(
            f"{name}: expected {n_features} features per sample (the first layer's "
            f"input width), got {d}"
        )
    if on_device:
        xp = backend.xp
        if has_values(arr) and not bool(xp.all(xp.isfinite(arr))):
            raise ValueError(f"{name}: contains NaN or Inf; clean or impute it first")
        return arr if arr.dtype == dtype else xp.astype(arr, dtype)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(
            f"{name}: contains {bad} NaN or Inf value(s); clean or impute them first"
        )
    return backend.asarray(arr, dtype=dtype)


def check_targets(
    Y: Any,
    backend: Any,
    dtype: Any,
    loss: Any,
    n_samples: int,
    n_outputs: int,
    name: str = "y",
    rows_name: str = "X",
) -> Any:
    """Validate targets for ``loss`` and return (n, n_outputs) floats on the device."""
    from bpnet.nn.losses import SoftmaxCrossEntropy

    arr, on_device = to_host_or_device(Y, backend, name)
    if on_device:
        arr = backend.to_numpy(arr)  # checked once on the host; small next to X
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: expected integer labels or a float array, got dtype {arr.dtype}"
        )
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name}: expected labels of shape (n_samples,) or targets of shape "
            f"(n_samples, {n_outputs}), got shape {arr.shape}"
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name}: {rows_name} has {n_samples} samples but {name} has "
            f"{arr.shape[0]}; "
            "they must have the same length"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    softmax = isinstance(loss, SoftmaxCrossEntropy)
    if softmax and n_outputs < 2:
        raise ValueError(
            "loss: SoftmaxCrossEntropy needs at least 2 outputs, the network has "
            f"{n_outputs}; use SigmoidCrossEntropy for a single output"
        )
    if arr.ndim == 1 and n_outputs == 1:
        T = arr.astype(np.float64).reshape(-1, 1)
        loss.check_targets(T, name)
        return backend.asarray(T, dtype=dtype)
    if arr.ndim == 1:
        if arr.dtype.kind == "f":
            if not np.array_equal(arr, np.round(arr)):
                raise ValueError(
                    f"{name}: expected integer class labels in [0, {n_outputs}), got "
                    "non-integer values"
                )
        labels = arr.astype(np.int64)
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= n_outputs:
            raise ValueError(
                f"{name}: expected class labels in [0, {n_outputs - 1}] for a network "
                f"with {n_outputs} outputs, got labels from {lo} to {hi}"
                + (
                    "; ex4's labels 1..10 map to 0..9 with y % 10"
                    if hi == n_outputs
                    else ""
                )
            )
        T = np.zeros((arr.shape[0], n_outputs), dtype=np.float64)
        T[np.arange(arr.shape[0]), labels] = 1.0
        return backend.asarray(T, dtype=dtype)
    if arr.shape[1] != n_outputs:
        raise ValueError(
            f"{name}: expected {n_outputs} target columns (the network's outputs), "
            f"got shape {arr.shape}"
        )
    T = arr.astype(np.float64)
    if softmax:
        if not (np.isin(T, (0.0, 1.0)).all() and (T.sum(axis=1) == 1).all()):
            raise ValueError(
                f"{name}: SoftmaxCrossEntropy takes integer labels or one-hot rows "
                "(a single 1, zeros elsewhere); some rows are not one-hot"
            )
    loss.check_targets(T, name)
    return backend.asarray(T, dtype=dtype)


def check_sample_weight(
    sample_weight: Any, backend: Any, dtype: Any, n_samples: int
) -> Any:
    """Validate sample weights (n,) and return them as a device column (n, 1)."""
    w = host_sample_weight(sample_weight, backend, n_samples)
    name = backend.dtype_name(dtype)
    if name != "float64":  # weights that underflow to 0 in the model's dtype
        cast = w.astype(name)
        lost = (w > 0) & (cast == 0)
        tiny = f"{np.finfo(name).smallest_subnormal:.3g}"
        if lost.any() and not (cast > 0).any():
            raise ValueError(
                f"sample_weight: every weight is below {name}'s smallest, {tiny} "
                f"(the largest is {w.max():.3g}), so all are 0 in the model's "
                "dtype; scale them up (the l2 term scales by the inverse) or fit "
                "in float64"
            )
        if lost.any():
            warnings.warn(
                f"sample_weight: {int(lost.sum())} weights > 0 are below {name}'s "
                f"smallest, {tiny}, and count as 0: those samples are not trained "
                "on (fit in float64 to keep them)",
                UserWarning,
                stacklevel=3,
            )
    return backend.asarray(w.reshape(-1, 1), dtype=dtype)


def host_sample_weight(sample_weight: Any, backend: Any, n_samples: int) -> np.ndarray:
    """Validate sample weights (n,): float64 on the host."""
    arr, on_device = to_host_or_device(sample_weight, backend, "sample_weight")
    if on_device:
        arr = backend.to_numpy(arr)
    if arr.dtype.kind not in "biuf" or arr.shape != (n_samples,):
        raise ValueError(
            f"sample_weight: expected {n_samples} numbers of shape ({n_samples},), "
            f"got shape {arr.shape} of dtype {arr.dtype}"
        )
    w = arr.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(
            "sample_weight: expected finite weights >= 0, got NaN, Inf or <0"
        )
    if not w.sum() > 0:
        raise ValueError(
            "sample_weight: every weight is 0, which leaves no sample to train on"
        )
    return w


def weighted_rows(
    sample_weight: Any, backend: Any, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """(host indices of the rows of weight > 0, every row's float64 weight)."""
    w = host_sample_weight(sample_weight, backend, n_samples)
    return np.flatnonzero(w > 0), w


def host_rows(a: Any, rows: Any) -> Any:
    """Rows ``rows`` (host indices) of a host array or sequence."""
    return np.asarray(a)[rows, ...]


def positive_rows(weights: Any, backend: Any) -> Any:
    """Device indices of the rows of weight > 0, or None when that is all."""
    w = backend.to_numpy(weights)[:, 0]
    return None if (w > 0).all() else backend.asarray(np.flatnonzero(w > 0))


def check_nonnegative(value: Any, name: str) -> float:
    """A finite float >= 0 (e.g. ``l2``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number >= 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return v


def check_positive(value: Any, name: str) -> float:
    """A finite float > 0 (e.g. a learning rate)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number > 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return v


def check_fraction(value: Any, name: str) -> float:
    """A number in [0, 1) (a momentum, a decay rate, a leak)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not 0 <= value < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (e.g. epochs, batch_size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_arrays(
    arrays: Any,
    what: str,
    shapes: list[tuple[int, ...]],
    backend: Any,
    dtype: Any,
    describe: Callable[[int], str],
) -> list[Any]:
    """A list of array-likes of ``shapes`` (``set_parameters``' argument),
    each finite and numeric, returned on the device in ``dtype``; an error
    names the entry, and ``describe(i)`` says what entry ``i`` is for."""
    if not isinstance(arrays, (list, tuple)) or len(arrays) != len(shapes):
        n = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
        raise ValueError(
            f"{what}: expected a list of {len(shapes)} arrays with shapes "
            f"{shapes}, got {n}"
        )
    xp = backend.xp
    converted = []
    for i, (p, shape) in enumerate(zip(arrays, shapes)):
        arr, on_device = to_host_or_device(p, backend, f"{what}[{i}]")
        if tuple(arr.shape) != shape:
            raise ValueError(
                f"{what}[{i}]: expected shape {shape} for {describe(i)}, got "
                f"{tuple(arr.shape)}"
            )
        if on_device:
            arr = arr if arr.dtype == dtype else xp.astype(arr, dtype)
        else:
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"{what}[{i}]: expected numbers, got dtype {arr.dtype}")
            arr = backend.asarray(arr, dtype=dtype)
        if has_values(arr) and not bool(xp.all(xp.isfinite(arr))):
            raise ValueError(
                f"{what}[{i}]: expected finite numbers, got NaN or infinity"
            )
        converted.append(arr)
    return converted
