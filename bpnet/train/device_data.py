"""fit's data on the device: training rows, targets and sample weights, and
the validation pair, given or held out of the training rows on the host
generator. Rows whose weight is 0 leave before batching."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.nn.losses import Loss


def _split(net: Any, X: Any, T: Any, fraction: float, W: Any = None) -> tuple[Any, ...]:
    """Hold out ``fraction`` of the rows (drawn on the host generator); with
    sample weights ``W``, their training rows come fifth.
    """
    n = X.shape[0]
    n_val = int(round(n * fraction))
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"validation_fraction: {fraction} of {n} samples leaves "
            f"{n_val} for validation and {n - n_val} for training; both need >= 1"
        )
    xp = net.xp
    perm = net.backend.asarray(net.host_rng.permutation(n))
    val, train = perm[:n_val], perm[n_val:]
    split = (
        xp.take(X, train, axis=0),
        xp.take(T, train, axis=0),
        xp.take(X, val, axis=0),
        xp.take(T, val, axis=0),
    )
    return split if W is None else (*split, xp.take(W, train, axis=0))


def _drop_zero_weights(net: Any, X: Any, T: Any, W: Any) -> tuple[Any, Any, Any]:
    """Rows whose weight is 0 take no part: they leave before batching, so no
    batch can weigh 0 in total."""
    keep = check.positive_rows(W, net.backend)
    if keep is None:
        return X, T, W
    xp = net.xp
    return tuple(xp.take(a, keep, axis=0) for a in (X, T, W))


def _check_fraction(fraction: float) -> float:
    checked = check.check_nonnegative(fraction, "validation_fraction")
    if checked >= 1:
        raise ValueError(
            f"validation_fraction: expected a number in [0, 1), got {fraction!r}"
        )
    return checked


def _device_data(
    net: Any,
    X: Any,
    y: Any,
    loss: Loss,
    validation_data: Any,
    fraction: float,
    sample_weight: Any = None,
    dp: Any = None,
) -> tuple[Any, Any, tuple[Any, Any] | None, Any]:
    """Training rows, targets and sample weights (or None) on the device, and
    the validation pair. A data-parallel run may leave a memory-mapped X on
    the host instead, to read each step's rows of this rank from it."""
    if dp is not None and dp.streams(X):
        if fraction > 0:
            raise ValueError(
                "validation_fraction: X is read from a memory map a batch at a "
                "time, so no rows can be held out of it; pass "
                "validation_data=(X_val, y_val)"
            )
        Xd = X
        T = check.check_targets(
            y, net.backend, net.dtype, loss, X.shape[0], net.n_outputs
        )
    else:
        Xd, T = net._prepare(X, y, loss)
    W = val = None
    if sample_weight is not None:
        W = check.check_sample_weight(sample_weight, net.backend, net.dtype, T.shape[0])
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data: expected a pair (X_val, y_val)")
        names = ("validation_data X_val", "validation_data y_val")
        val = net._prepare(*validation_data, loss, names)
    elif fraction > 0 and W is not None:
        Xd, T, Xv, Tv, W = _split(net, Xd, T, fraction, W)
        val = (Xv, Tv)
    elif fraction > 0:
        Xd, T, Xv, Tv = _split(net, Xd, T, fraction)
        val = (Xv, Tv)
    if W is not None and dp is not None and dp.X is not None:
        keep = check.positive_rows(W, net.backend)
        if keep is not None:  # the memory map stays whole: its rows map through
            T, W = net.xp.take(T, keep, axis=0), net.xp.take(W, keep, axis=0)
            dp.kept = net.backend.to_numpy(keep)
    elif W is not None:
        Xd, T, W = _drop_zero_weights(net, Xd, T, W)
    return Xd, T, val, W
