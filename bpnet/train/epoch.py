"""One epoch of minibatch steps on the device.

Device work only: batches gathered with ``take`` from a permutation buffer,
parameters updated (in place where the array library allows it), loss and
correct counts summed into 0-D device arrays. ``fit`` calls an epoch directly
or captures it once as a CUDA graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bpnet.nn.evaluation import _correct, _correct_count
from bpnet.nn.layers import hands_out_fresh_grads
from bpnet.nn.losses import Loss
from bpnet.nn.mutation import writer, writes_in_place
from bpnet.train.fused import SGDStep, fused_sgd_applies
from bpnet.train.optimizers import Optimizer

_UNCHANGED = (
    "optimizer: {0}.update changed none of the parameters it was given; on "
    "arrays that cannot be written in place (JAX's), an update must put each "
    "new array into the list: params[i] = w.sub(params[i], ...) with "
    "w = self._prepare(params) (bpnet.nn.mutation)"
)


def _copy(params: list[Any]) -> list[Any]:
    return [p * 1.0 for p in params]


#: Batches of at least this many bytes are gathered into reused arrays where
#: the backend can (``_BatchBuffers``); a new array of a few MB every step
#: cost 5-12% of a step of 784-32-10 and 784-128-10 at batch 2048 on NumPy,
#: and smaller ones cost nothing measurable (a reused one costs a little
#: Python: 1-3 us a step at batch 4).
BUFFER_MIN_BYTES = 4 << 20


class _BatchBuffers:
    """Gathered batches written into the same arrays every step, one per kind
    of rows (the batch, its targets, labels, weights), where the backend
    gathers into an array it is given (``Backend.gathers_into``): no new
    batch-sized arrays per step, and the same memory under every product
    that reads the batch. The last, shorter batch takes the first rows. Each
    kind is always gathered from the same array (the epoch's X, T, labels,
    weights), so only a longer batch needs a new one."""

    @staticmethod
    def pay_off(backend: Any, X: Any, batch_size: int) -> bool:
        row = math.prod(X.shape[1:]) * getattr(X.dtype, "itemsize", 4)
        return backend.gathers_into and batch_size * row >= BUFFER_MIN_BYTES

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.into = backend.take_rows_into
        self.arrays: dict[str, Any] = {}

    def take(self, kind: str, x: Any, indices: Any) -> Any:
        n = indices.shape[0]
        buf = self.arrays.get(kind)
        if buf is not None and buf.shape[0] == n:  # every full batch
            return self.into(x, indices, buf)
        if buf is None or buf.shape[0] < n:
            be = self.backend
            with be.context():
                buf = be.xp.empty((n, *x.shape[1:]), dtype=x.dtype, device=be.device)
            self.arrays[kind] = buf
        out = buf if buf.shape[0] == n else buf[:n, ...]
        return self.into(x, indices, out)


class _Epoch:
    """One epoch of minibatch steps: device work only, parameters updated in
    place, loss and correct counts summed into 0-D device arrays. Called
    directly, or captured once and replayed as a CUDA graph.
    """

    def __init__(
        self,
        net: Any,
        opt: Optimizer,
        loss: Loss,
        l2: float,
        X: Any,
        T: Any,
        labels: Any,
        batch_size: int,
        shuffle: bool,
        track_accuracy: bool,
        weights: Any = None,
        strategy: Any = None,
        recorded: bool = False,
    ) -> None:
        self.net, self.opt, self.loss, self.l2 = net, opt, loss, l2
        self.X, self.T, self.labels = X, T, labels
        self.weights = weights  # (n, 1) sample weights on the device, or None
        # what loss_sum is divided by: rows, or their total weight
        self.total = T.shape[0] if weights is None else float(net.xp.sum(weights))
        self.batch_size, self.shuffle = batch_size, shuffle
        self.track_accuracy = track_accuracy
        # Data-parallel training (bpnet.distributed): this rank's rows of each
        # batch, and gradients summed across ranks before the update.
        self.strategy = strategy
        # Layers that hand out fresh gradient arrays each step let the
        # optimizer scale them in place; another layer's might be its own state.
        owned = all(
            hands_out_fresh_grads(layer)
            for layer in net.layers
            if layer.named_parameters()
        )
        self._update = opt._update_owned if owned else opt.update
        # Plain SGD folded into the backward pass where that is exact
        # (bpnet.train.fused); ``recorded``: replayed as a graph after the first
        # epoch, which would keep that epoch's learning rate.
        fused = fused_sgd_applies(net, opt, l2, weights, strategy, recorded)
        self.sgd_step = SGDStep(net, loss, l2) if fused else None
        # The epoch's loss and correct-count sums: host scalars where reading a
        # 0-D array back is free (NumPy: two 0-D array updates fewer a step,
        # the same float32 or float64 arithmetic, an exact int count), else 0-D
        # device arrays that the steps update without waiting for the device
        # (and a recorded graph keeps).
        self.host_sums = net.backend.host_scalars and not recorded
        self.recorded = recorded
        self.count = _correct_count if self.host_sums else _correct
        xp, dev = net.xp, net.backend.device
        with net.backend.context():
            self.loss_sum = xp.zeros((), dtype=net.dtype, device=dev)
            self.correct = xp.zeros((), dtype=net.dtype, device=dev)
        self.order: Any = None
        big = _BatchBuffers.pay_off(net.backend, X, batch_size)
        self.buffers = _BatchBuffers(net.backend) if big else None

    def set_order(self, order: Any) -> None:
        # Copied into one buffer so a captured graph keeps reading it; taken
        # as it is otherwise (a copy is an eager scatter on JAX: 3 ms of
        # Python an epoch, a twentieth of a small epoch)
        if self.order is None or not self.recorded:
            self.order = order
        else:
            self.order = writer(self.order).set(self.order, order)

    def _global_weight(self, lo: int, hi: int) -> Any:
        """Total weight of the global batch [lo, hi) of the epoch's order."""
        W, dp, be = self.weights, self.strategy, self.net.backend
        if dp.X is not None:  # streamed: the order lives on the host
            idx = None if dp.host_order is None else be.asarray(dp.host_order[lo:hi])
        else:
            idx = self.order[lo:hi] if self.shuffle else None
        rows = W[lo:hi, ...] if idx is None else be.take_rows(W, idx)
        return self.net.xp.sum(rows)

    # --- a step as a function of the state (Keras 3's stateless_call): for a
    # backend that compiles it (the JAX backend's jax.jit) --------------------
    @property
    def stateless(self) -> bool:
        """Whether ``stateless_step`` serves this epoch: one process, the
        optimizer's own update (no folded SGD), sums kept on the device."""
        return self.strategy is None and self.sgd_step is None and not self.host_sums

    def state(self) -> dict[str, Any]:
        """Every array a step changes: parameters, buffers, the optimizer's
        moments and 0-D learning rate and step count, the dropout generator's
        arrays, and the epoch's two sums."""
        net, opt = self.net, self.opt
        return {
            "params": net.parameters(),
            "buffers": net.buffers(),
            "moments": {k: list(v) for k, v in opt.state.items()},
            "lr": opt._lr,
            "t": opt._t,
            "rng": net.device_rng.get_arrays(),
            "sums": [self.loss_sum, self.correct],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Hand the arrays of ``state()`` back to their owners."""
        net, opt = self.net, self.opt
        net._assign(state["params"])
        for (layer, name), b in zip(net._buffer_slots, state["buffers"]):
            setattr(layer, name, b)
        opt.state = {k: list(v) for k, v in state["moments"].items()}
        opt._lr, opt._t = state["lr"], state["t"]
        net.device_rng.set_arrays(state["rng"])
        self.loss_sum, self.correct = state["sums"]

    def zero_sums(self) -> None:
        """Start the epoch's device sums at zero."""
        w = writer(self.loss_sum)
        self.loss_sum = w.set(self.loss_sum, 0.0)
        self.correct = w.set(self.correct, 0.0)

    def stateless_step(
        self, state: dict[str, Any], X: Any, T: Any, labels: Any, W: Any, idx: Any
    ) -> tuple[dict[str, Any], Any]:
        """(the new state, the batch's loss) for one step from ``state``,
        on rows ``idx`` of ``X``, ``T``, ``labels`` and ``W`` (the arrays
        themselves are the batch where ``idx`` is None): the same layers,
        loss and optimizer as every other step, traced as they run."""
        self.set_state(state)
        if idx is not None:
            take = self.net.backend.take_rows
            X, T, labels = take(X, idx), take(T, idx), take(labels, idx)
            W = None if W is None else take(W, idx)
        params = self.net.parameters()
        L, correct = self._step(X, T, labels, W, params, self.net._assign)
        weight = float(T.shape[0]) if W is None else self.net.xp.sum(W)
        w = writer(self.loss_sum)
        self.loss_sum = w.add(self.loss_sum, L * weight)
        if self.track_accuracy:
            self.correct = w.add(self.correct, correct)
        return self.state(), L

    def _step(
        self, Xb: Any, Tb: Any, lb: Any, wb: Any, params: list[Any], keep: Any
    ) -> tuple[Any, Any]:
        """One process's step on a batch: (0-D loss, correct count or
        None); ``keep(params)`` stores parameters the optimizer made anew."""
        net, loss = self.net, self.loss
        L, grads, Z = net._loss_and_grad(
            Xb, Tb, loss, self.l2, return_logits=True, weights=wb
        )
        correct = self.count(Z, lb, loss) if self.track_accuracy else None
        if keep is None:
            self._update(params, grads)
            return L, correct
        before = list(params)
        self._update(params, grads)
        if all(a is b for a, b in zip(before, params)):
            raise TypeError(_UNCHANGED.format(type(self.opt).__name__))
        keep(params)
        return L, correct

    def __call__(self, after_step: Callable[[int, Any], None] | None) -> None:
        net, xp, opt, loss, l2 = self.net, self.net.xp, self.opt, self.loss, self.l2
        X, T, labels, bs = self.X, self.T, self.labels, self.batch_size
        take_rows = self.net.backend.take_rows
        W, wb = self.weights, None
        n = T.shape[0]  # X's rows, but for a memory map's skipped ones
        params = net.parameters()
        # where the optimizer makes new arrays, the network gets them each step
        keep = None if writes_in_place(params[0]) else net._assign
        host, count = self.host_sums, self.count
        if host:  # NumPy's scalar type of the sums' dtype (host_scalars: NumPy)
            cast = self.loss_sum.dtype.type
            loss_sum, correct_sum = cast(0), 0
        else:
            self.zero_sums()
            w = writer(self.loss_sum)
        dp, sgd_step, bufs = self.strategy, self.sgd_step, self.buffers
        if bufs is not None:
            gather = bufs.take
        else:

            def gather(kind: str, x: Any, idx: Any) -> Any:
                return take_rows(x, idx)

        for s in range(math.ceil(n / bs)):
            lo, hi = s * bs, min((s + 1) * bs, n)
            a, b = (lo, hi) if dp is None else dp.rows(lo, hi)
            if dp is not None and dp.X is not None:  # streamed from the host
                Xb, Tb, lb, wb = dp.gather(a, b, T, labels, W)
            elif self.shuffle:
                idx = self.order[a:b]
                Xb, Tb = gather("X", X, idx), gather("T", T, idx)
                lb = gather("labels", labels, idx)
                if W is not None:
                    wb = gather("W", W, idx)
            else:
                Xb, Tb, lb = X[a:b, ...], T[a:b, ...], labels[a:b]
                if W is not None:
                    wb = W[a:b, ...]
            total = None
            if sgd_step is not None:
                L, Z = sgd_step(Xb, Tb, opt.lr, wb)
                correct = count(Z, lb, loss) if self.track_accuracy else None
                if dp is not None:  # one rank: its own Ctrl-C is the job's
                    dp.interrupted = dp.pending()
            elif dp is None:
                L, correct = self._step(Xb, Tb, lb, wb, params, keep)
            else:
                # every rank holds all the weights: the global batch's total
                # needs no reduction
                total = None if W is None else self._global_weight(lo, hi)
                L, grads, correct = dp.step(
                    Xb, Tb, lb, loss, l2, hi - lo, self.track_accuracy, wb, total
                )
                self._update(params, grads)
                if keep is not None:
                    keep(params)
            # the batch's weight: its rows, or their summed weight (all ranks'
            # rows under data parallelism)
            if wb is None:
                weight: Any = float(hi - lo)
            else:
                weight = xp.sum(wb) if total is None else total
            if host:  # the 0-D array's arithmetic: rounded to its dtype each step
                loss_sum = cast(loss_sum + L * weight)
                if self.track_accuracy:
                    correct_sum += correct
            else:
                self.loss_sum = w.add(self.loss_sum, L * weight)
                if self.track_accuracy:
                    self.correct = w.add(self.correct, correct)
            if after_step is not None:
                opt.t += 1
                after_step(s, L)
        if host:
            self.loss_sum, self.correct = loss_sum, correct_sum
