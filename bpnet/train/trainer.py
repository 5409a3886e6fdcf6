"""The epochs of a fit: steps on the device, and the callbacks around them.

``fit`` (``bpnet.train.loop``) checks its arguments and builds the run and
its callbacks; ``train`` here runs the epochs, calls each callback's hooks in
order, ends every begun callback also when one raises, and turns a device
out of memory into one clear error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bpnet.train.callbacks import Callback, DeferInterrupt, Run, overrides
from bpnet.train.epoch import _Epoch
from bpnet.train.history import History


def train(
    run: Run,
    callbacks: Sequence[Callback],
    cuda_graph: bool | None,
    strategy: Any = None,
) -> History:
    """Run ``run.epochs`` epochs with ``callbacks``; return the history.
    A ``strategy`` (``bpnet.distributed``) takes each step's slice of the
    batch and reduces the gradients across ranks."""
    return _Loop(run, callbacks, cuda_graph, strategy).train()


class _Loop:
    """Epochs of steps; the callbacks do everything else."""

    def __init__(
        self,
        run: Run,
        callbacks: Sequence[Callback],
        cuda_graph: bool | None,
        strategy: Any = None,
    ) -> None:
        self.run, self.callbacks, self.dp = run, list(callbacks), strategy
        self.step_hooks = [
            cb.on_step_end for cb in self.callbacks if overrides(cb, "on_step_end")
        ]
        self.interrupts = [
            cb for cb in self.callbacks if isinstance(cb, DeferInterrupt)
        ]
        capture = strategy is None and _want_graph(cuda_graph, run.net, self.callbacks)
        self.epoch_run = _Epoch(
            run.net,
            run.optimizer,
            run.loss,
            run.l2,
            run.X,
            run.T,
            run.labels,
            run.batch_size,
            run.shuffle,
            run.track_accuracy,
            run.weights,
            strategy,
            recorded=capture,
        )
        self.runner = run.net.backend.epoch_runner(self.epoch_run, capture)

    def train(self) -> History:
        run, be = self.run, self.run.net.backend
        begun: list[Callback] = []
        try:
            with be.errstate():
                try:
                    for cb in self.callbacks:
                        cb.on_train_begin(run)
                        begun.append(cb)
                    for epoch in range(run.start_epoch, run.total_epochs):
                        if self.epoch(epoch):
                            break
                except BaseException as exc:
                    run.error = exc
                    raise
                finally:
                    self.end(begun)
        except Exception as exc:
            if be.is_out_of_memory(exc):
                run.restore_good()
                raise MemoryError(
                    f"batch_size: the device {be.name!r} ran out of memory training "
                    f"with batch_size={run.batch_size}; try a smaller batch_size "
                    "(the weights of the last finished epoch were kept)"
                ) from exc
            raise
        return run.history

    def end(self, begun: list[Callback]) -> None:
        """Every begun callback's ``on_train_end``, also when one of them
        raises; Ctrl-C held until the last of them (``DeferInterrupt``'s
        goes last) and then raised, so fit never returns past one."""
        run = self.run
        waiting = [cb for cb in begun if isinstance(cb, DeferInterrupt)]
        first: BaseException | None = None
        for cb in [cb for cb in begun if cb not in waiting] + waiting:
            try:
                cb.on_train_end(run)
            except BaseException as exc:
                first = first or exc
        if run.error is None and first is None:
            if any(cb.pending for cb in waiting):
                first = KeyboardInterrupt()
        if run.error is None and first is not None:
            raise first

    def epoch(self, epoch: int) -> bool:
        """One epoch of steps, then its logs; True when a callback stops."""
        run, net = self.run, self.run.net
        run.epoch_start = time.perf_counter()
        run.optimizer.set_epoch(epoch)
        if run.shuffle:
            order = net.host_rng.permutation(run.n)
            if self.dp is not None and self.dp.X is not None:
                self.dp.host_order = order  # rows read from the memory map
            else:
                self.epoch_run.set_order(net.backend.asarray(order))
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, net)
        if self.runner(self.after_step):  # replayed as one graph: no steps seen
            run.optimizer.t += run.steps
            for hook in self.step_hooks:
                hook(run.steps - 1, {"loss": None, "steps": run.steps}, net)
        run.history.cuda_graph = self.runner.replaying
        net.backend.synchronize()
        logs: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": float(self.epoch_run.loss_sum) / self.epoch_run.total,
            "accuracy": (
                float(self.epoch_run.correct) / run.n if run.track_accuracy else None
            ),
            "lr": run.optimizer.lr,
        }
        stop = False
        for cb in self.callbacks:
            if cb.on_epoch_end(epoch, logs, net) is True:
                stop = True
        # Ctrl-C while the last epoch was validated, recorded or saved: its
        # checkpoint is whole, and no step follows to raise it after (in
        # earlier epochs the next step does, on every rank at the same step)
        last = epoch + 1 == self.run.total_epochs
        if last and any(cb.pending for cb in self.interrupts):
            raise KeyboardInterrupt
        if self.dp is not None:  # decided once, so no rank trains on alone
            stop = self.dp.agree(stop)
        return stop

    def after_step(self, step: int, L: Any) -> None:
        for hook in self.step_hooks:
            hook(step, {"loss": L, "steps": 1}, self.run.net)


def _want_graph(
    cuda_graph: bool | None, net: Any, callbacks: Sequence[Callback]
) -> bool:
    """Whether to record an epoch as a graph: asked for, or by default where
    the backend can, its dropout masks too, and no callback needs each step."""
    from bpnet.nn.layers import Dropout

    supported = net.backend.supports_graphs
    if cuda_graph is None:
        dropout = any(isinstance(layer, Dropout) for layer in net.layers)
        rng_ok = not dropout or net.backend.graph_safe_random
        per_step = any(
            cb.every_step and overrides(cb, "on_step_end") for cb in callbacks
        )
        return supported and rng_ok and not per_step
    if cuda_graph and not supported:
        raise ValueError(
            f"cuda_graph: the {net.backend.name!r} backend cannot capture graphs; "
            "use cuda_graph=None or False"
        )
    return bool(cuda_graph)
