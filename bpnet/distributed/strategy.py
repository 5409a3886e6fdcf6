"""Data-parallel steps: each rank's slice of the global batch, gradients
averaged across ranks, the same update everywhere.

The loss is a mean over the global batch of N rows, so a rank holding n of
them scales its gradient (a mean over its n rows) by n / N before the sum:
the sum is then the gradient one process computes on all N rows, uneven last
batch included. The L2 term uses N too and is added after the reduction, as
``Sequential`` adds it.

All gradients live in one flat buffer allocated once, with three slots after
them: the step's loss, its correct count and an "interrupted" flag, so one
reduction per step also tells every rank the global loss and whether any rank
got Ctrl-C. With ``overlap`` the buffer is cut into buckets of whole layers,
last layer first, and each bucket's reduction starts as soon as its layers'
backward is done, while earlier layers are still in backward (PyTorch DDP's
scheme).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnet.nn import validation as check
from bpnet.nn.evaluation import _correct, _evaluate_device, _labels
from bpnet.nn.layers import writes_grad_out
from bpnet.nn.mutation import writes_in_place

_LOSS, _CORRECT, _STOP = 0, 1, 2  # the slots after the gradients


def _gradients(layer: Any) -> list[Any]:
    """A layer's gradients of its last backward, in ``params`` order (layers
    that own parameters by name hand them out as a dict)."""
    named = getattr(layer, "named_gradients", None)
    return list(named().values()) if named is not None else list(layer.grads)


def _decayed(net: Any) -> list[tuple[int, Any]]:
    """(index in ``parameters()``, array) of each parameter L2 decays."""
    named = getattr(net, "_decayed", None)
    if named is not None:  # parameters owned by name: (index, layer, name)
        return [(k, getattr(layer, name)) for k, layer, name in named]
    params = net.parameters()
    return [(k, params[k]) for k in net._weight_index]


class _GlobalMasks:
    """The network's device generator, drawing for the global batch.

    Dropout asks for a mask of the local batch's shape; this draws the mask of
    the whole global batch and hands back this rank's rows, so each sample gets
    the mask it gets in one process and every rank's generator stays in step.
    """

    def __init__(self, rng: Any, offset: int, n_global: int) -> None:
        self.rng, self.offset, self.n_global = rng, offset, n_global

    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        u = self.rng.uniform((self.n_global, *shape[1:]), dtype)
        return u[self.offset : self.offset + shape[0], ...]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rng, name)


def evaluate(
    comm: Any, net: Any, X: Any, y: Any, loss: Any = None, l2: float = 0.0
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``net`` on ``X``, ``y`` over all ranks: each
    evaluates (and reads, from a memory map) only its shard of the rows."""
    from bpnet.nn.losses import get_loss

    loss = net.loss if loss is None else get_loss(loss)
    n = X.shape[0]
    a, b = comm.shard(n)
    local = [0.0, 0.0]
    if b > a:
        with net.backend.context():
            Xd, T = net._prepare(X[a:b, ...], y[a:b, ...], loss)
            L, c = _evaluate_device(net, Xd, T, _labels(T, loss), loss, 4096)
            local = [float(L), float(c)]
    total = comm.allreduce_host(local, what="evaluation's allreduce")
    mean = total[0] / n + (float(net._l2_penalty(l2, n)) if l2 else 0.0)
    return float(mean), float(total[1]) / n


class DataParallel:
    """The strategy ``fit`` calls for each step: local forward and backward,
    one (bucketed) sum of the weighted gradients, global loss and counts.
    """

    def __init__(self, comm: Any, net: Any) -> None:
        self.comm, self.net = comm, net
        self.rank, self.size, self.is_root = comm.rank, comm.size, comm.is_root
        be, xp = net.backend, net.xp
        # (start, stop, shape) of each parameter, grouped by layer
        self.layout: list[list[tuple[int, int, tuple[int, ...]]]] = []
        offset = 0
        for layer in net.layers:
            spans = []
            for p in layer.params:
                size = 1
                for s in p.shape:
                    size *= int(s)
                spans.append((offset, offset + size, tuple(p.shape)))
                offset += size
            self.layout.append(spans)
        self.n_grads = offset
        with be.context():
            self.buf = xp.zeros((offset + 3,), dtype=net.dtype, device=be.device)
        if not writes_in_place(self.buf):
            raise ValueError(
                "comm: data-parallel training sums gradients in one buffer "
                f"written in place, and {be.name!r} arrays cannot be written in "
                "place; train without comm, or on device 'cpu' (NumPy) or 'torch'"
            )
        self.view = comm.wrap(self.buf, be)
        # Layers that can write their gradients straight into the buffer
        # (Dense) get views of it: no copy in before the reduction.
        self.dest: dict[int, dict[str, Any]] = {}
        for i, layer in enumerate(net.layers):
            if writes_grad_out(layer) and self.layout[i]:
                names = layer.named_parameters()  # in layout's order
                views = {
                    name: xp.reshape(self.buf[a:b], shape)
                    for name, (a, b, shape) in zip(names, self.layout[i])
                }
                if self._are_views(views, self.layout[i]):
                    self.dest[i] = views
        self.buckets = self._buckets()
        self.pending = lambda: False  # fit points this at its Ctrl-C flag
        self.interrupted = False
        self.row0 = 0  # this rank's first row within the current global batch
        self.X: Any = None  # a memory-mapped X, read a batch's rows at a time
        self.host_order: Any = None
        self.kept: Any = None  # X's row of each training row, when they differ

    def _are_views(self, views: dict[str, Any], spans: list[Any]) -> bool:
        """Whether writing into ``views`` lands in the buffer (a backend's
        reshape of a slice may be a copy): checked once, by writing."""
        for v in views.values():
            v[...] = 1.0
        seen = all(
            float(self.view[a]) == 1.0 == float(self.view[b - 1]) for a, b, _ in spans
        )
        self.buf[...] = 0.0
        return seen

    def streams(self, X: Any) -> bool:
        """Whether ``fit`` should leave ``X`` on the host and have each step
        read only this rank's rows of it: a NumPy memory map (``--data
        X.npy``), so no rank ever holds the whole data set."""
        if isinstance(X, np.memmap):
            self.X = X
            return True
        return False

    def gather(
        self, a: int, b: int, T: Any, labels: Any, W: Any = None
    ) -> tuple[Any, Any, Any, Any]:
        """Rows [a, b) of the epoch's order, read from the memory map: X
        validated and copied to the device, T, labels and the sample weights
        ``W`` (or None) taken there."""
        net, be = self.net, self.net.backend
        if self.host_order is None:
            idx = np.arange(a, b)
        else:
            idx = self.host_order[a:b]
        if b > a:
            rows = idx if self.kept is None else self.kept[idx]
            Xb = check.check_X(self.X[rows], be, net.dtype, net.n_inputs)
        else:
            with be.context():
                Xb = net.xp.zeros((0, net.n_inputs), dtype=net.dtype, device=be.device)
        i = be.asarray(idx)
        take = net.xp.take
        wb = None if W is None else take(W, i, axis=0)
        return Xb, take(T, i, axis=0), take(labels, i, axis=0), wb

    def _buckets(self) -> dict[int, tuple[int, int]]:
        """Layer index -> the (lo, hi) range to start reducing after its backward.

        Whole layers, last first, up to ``bucket_bytes`` each; the bucket of the
        last layer also carries the three slots (known before backward).
        """
        if not self.comm.overlap:
            return {}
        itemsize = 8 if self.net.dtype_name == "float64" else 4
        learning = [i for i, spans in enumerate(self.layout) if spans]
        buckets: dict[int, tuple[int, int]] = {}
        hi = self.n_grads + 3
        for i in reversed(learning):
            lo = self.layout[i][0][0]
            if (hi - lo) * itemsize >= self.comm.bucket_bytes or i == learning[0]:
                buckets[i] = (lo, hi)
                hi = lo
        return buckets

    def rows(self, lo: int, hi: int) -> tuple[int, int]:
        """This rank's rows [a, b) of the global batch [lo, hi)."""
        a, b = self.comm.shard(hi - lo)
        self.row0 = a
        return lo + a, lo + b

    def step(
        self,
        X: Any,
        T: Any,
        labels: Any,
        loss: Any,
        l2: float,
        n_global: int,
        track_accuracy: bool,
        weights: Any = None,
        total: Any = None,
    ) -> tuple[Any, list[Any], Any]:
        """Global (loss, gradients, correct count) of one step on every rank,
        from this rank's rows ``X``, ``T`` of a global batch of ``n_global``.

        With sample ``weights`` (this rank's rows, a column) and ``total``,
        the global batch's total weight, the loss is the weighted mean over
        the global batch and the L2 term is divided by ``total``, as
        ``Sequential.loss_and_grad`` does in one process.
        """
        net, xp, buf = self.net, self.net.xp, self.buf
        n = X.shape[0]
        w = n / n_global if weights is None else 1.0
        rng = net.device_rng
        net.device_rng = _GlobalMasks(rng, self.row0, n_global)
        try:
            Z = net._forward(X, True)
        finally:
            net.device_rng = rng
        requests: list[Any] = []
        if n:
            if weights is None:
                L, dZ = loss.loss_and_grad(Z, T)
            else:  # this rank's share of the global weighted mean
                L, dZ = loss.loss_and_grad(Z, T, weights=weights / total)
            if w != 1.0:  # backward is linear in dZ: every gradient scales
                dZ = dZ * w
            buf[self.n_grads + _LOSS] = L * w
            buf[self.n_grads + _CORRECT] = (
                _correct(Z, labels, loss) if track_accuracy else 0.0
            )
        else:
            buf[...] = 0.0
        buf[self.n_grads + _STOP] = 1.0 if self.pending() else 0.0
        last = len(net.layers) - 1
        for i in range(last, -1, -1):
            layer = net.layers[i]
            if n:
                dest = self.dest.get(i)
                if dest is None:
                    dZ = layer.backward(dZ, need_dx=net._need_dx[i])
                    for (a, b, _), g in zip(self.layout[i], _gradients(layer)):
                        buf[a:b] = xp.reshape(g, (-1,))
                else:
                    layer.grad_out = dest
                    try:
                        dZ = layer.backward(dZ, need_dx=net._need_dx[i])
                    finally:
                        layer.grad_out = None
            if i in self.buckets:
                requests.append(self.comm.start(self.view, *self.buckets[i]))
            else:
                self.comm.progress(requests)
        if not self.buckets:
            requests.append(self.comm.start(self.view, 0, self.n_grads + 3))
        self.comm.wait(requests)
        spans = [span for layer in self.layout for span in layer]
        grads = [xp.reshape(buf[a:b], shape) for a, b, shape in spans]
        L = self._slot(_LOSS)
        if l2:
            norm = n_global if total is None else total
            L = L + net._l2_penalty(l2, norm)
            scale = l2 / norm
            for k, W in _decayed(net):
                grads[k] = grads[k] + scale * W
        self.interrupted = bool(self.view[self.n_grads + _STOP] > 0)
        return L, grads, self._slot(_CORRECT)

    def _slot(self, k: int) -> Any:
        """Slot ``k`` after the gradients, as a 0-D array."""
        i = self.n_grads + k
        return self.net.xp.reshape(self.buf[i : i + 1], ())

    def evaluate(
        self, X: Any, T: Any, labels: Any, loss: Any, batch_size: int = 4096
    ) -> tuple[float, float]:
        """Summed loss and correct count over all ranks' shards of ``X``."""
        a, b = self.comm.shard(X.shape[0])
        if b > a:
            L, c = _evaluate_device(
                self.net, X[a:b, ...], T[a:b, ...], labels[a:b], loss, batch_size
            )
            local = [float(L), float(c)]
        else:
            local = [0.0, 0.0]
        total = self.comm.allreduce_host(local, what="evaluation's allreduce")
        return float(total[0]), float(total[1])

    def callbacks(self, own: list[Any]) -> list[Any]:
        """fit's own callbacks as this rank should run them."""
        from bpnet.distributed.callbacks import rank_aware

        return rank_aware(self, own)

    def check_same_run(self, *settings: dict[str, Any]) -> None:
        """Refuse, on every rank and before any step, a rank whose
        ``settings`` (fit's arguments, the network, the optimizer, data
        fingerprints) differ from rank 0's: ``RankMismatchError`` naming the
        rank and the setting."""
        from bpnet.distributed.agree import check_ranks_agree

        merged: dict[str, Any] = {}
        for part in settings:
            merged.update(part)
        check_ranks_agree(self.comm, merged, "fit settings and data")

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision, on every rank."""
        return bool(self.comm.bcast(bool(flag)))
