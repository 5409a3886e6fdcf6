"""Data-parallel full-batch training: each rank's rows of the data on its
device, and the one allreduce per evaluation that gives every rank (and its
scipy) the loss and gradient of the whole batch (``minimize(comm=...)``)."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.nn.losses import Loss


def _shard(
    net: Any, X: Any, y: Any, loss: Loss, sample_weight: Any, comm: Any
) -> tuple[Any, Any, Any, float]:
    """This rank's rows of X, y (and their weights) on its device, and its
    share of the whole: rows, or weight.

    Each rank's mean is scaled by its share, so the sum over ranks is one
    process's mean. Rank 0 alone adds L2: l2 / (2 n0) * sum(W**2) scaled by
    n0 / n is one process's l2 / (2 n) * sum(W**2), and so for its gradient
    (with weights, n is the summed weight). Rows of weight 0 leave first, so
    rank 0's share is never 0.
    """
    be = net.backend
    if sample_weight is None:
        start, stop = comm.shard(X.shape[0])
        Xd, T = _prepare(net, X, X[start:stop, ...], y[start:stop, ...], loss)
        return Xd, T, None, (stop - start) / X.shape[0]
    rows, w = check.weighted_rows(sample_weight, be, X.shape[0])
    start, stop = comm.shard(rows.size)
    mine = rows[start:stop]
    Xd, T = _prepare(net, X, X[mine, ...], check.host_rows(y, mine), loss)
    W = be.asarray(w[mine, None], dtype=net.dtype)
    return Xd, T, W, float(w[mine].sum() / w[rows].sum())


def _prepare(net: Any, X: Any, Xs: Any, ys: Any, loss: Loss) -> tuple[Any, Any]:
    """A shard ``Xs``, ``ys`` of ``X`` on the device; a rank past the last row
    (fewer rows than ranks) keeps its empty shard and adds zeros to the sums."""
    if Xs.shape[0] or X.shape[0] == 0:  # no rows at all: one process's error
        return net._prepare(Xs, ys, loss)
    if net.n_inputs is None:
        net._build_for(X)
    return Xs, None


def _objective_parallel(
    net: Any,
    X: Any,
    T: Any,
    W: Any,
    loss: Loss,
    l2: float,
    weight: float,
    comm: Any,
) -> tuple[float, Any]:
    """The full batch's loss and gradient from every rank's share: one allreduce."""
    if X.shape[0]:
        L, grads = net._loss_and_grad(X, T, loss, l2, training=False, weights=W)
        parts = (net.backend.pack(grads) * weight, [float(L) * weight])
    else:
        parts = ([0.0] * net.n_parameters, [0.0])
    total = comm.allreduce_host(*parts, what="full-batch allreduce")
    return float(total[-1]), total[:-1]
