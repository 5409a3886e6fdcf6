"""fit's own callbacks, made rank-aware for data-parallel training.

Every rank runs the same callbacks on the same numbers (the epoch's loss and
counts come out of the step's reduction), so most need nothing. These do:
Ctrl-C is shared through the step's reduction, validation scores each rank's
shard, and only rank 0 prints, draws the bar, writes checkpoints (every
rank still restores from one when resuming) and warns about the loss trend
(not at all when X is read from a memory map: its sample would be host rows).
"""

from __future__ import annotations

from typing import Any

from bpnet.train.callbacks import (
    Callback,
    Checkpoint,
    DeferInterrupt,
    PrintEpochs,
    ProgressBar,
    Run,
    Validation,
)
from bpnet.train.guard import LossTrend


class SharedInterrupt(DeferInterrupt):
    """Ctrl-C on any rank stops every rank after the same step: the flag
    travels in that step's reduction, so no rank waits alone in the next."""

    def __init__(self, dp: Any) -> None:
        super().__init__()
        self.dp = dp

    def on_train_begin(self, run: Run) -> None:
        super().on_train_begin(run)
        self.dp.pending = lambda: self.pending

    def on_step_end(self, step: int, logs: dict, net: Any) -> None:
        if self.dp.interrupted:
            raise KeyboardInterrupt


class ShardedValidation(Validation):
    """``val_loss`` and ``val_accuracy``: each rank scores its shard of the
    held-out rows, and the sums are reduced."""

    def __init__(self, dp: Any, X: Any, T: Any, labels: Any) -> None:
        super().__init__(X, T, labels)
        self.dp = dp

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        m = self.X.shape[0]
        vl, vc = self.dp.evaluate(self.X, self.T, self.labels, self.run.loss)
        logs["val_loss"] = vl / m
        logs["val_accuracy"] = vc / m if self.run.track_accuracy else None


class AverageBuffers(Callback):
    """Running statistics (BatchNorm's buffers) averaged across ranks at each
    epoch's end, before anything checks, keeps, saves or scores them: each
    rank's come from its own slices of the batches."""

    def __init__(self, dp: Any) -> None:
        self.dp = dp

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        be = net.backend
        named = [
            (layer, name, be.to_numpy(value))
            for layer in net.layers
            for name, value in layer.named_buffers().items()
        ]
        if not named:
            return
        total = self.dp.comm.allreduce_host(
            *(host for _, _, host in named), what="buffers' allreduce"
        )
        offset = 0
        for layer, name, host in named:
            mean = total[offset : offset + host.size] / self.dp.size
            layer.set_buffer(name, be.asarray(mean.reshape(host.shape), net.dtype))
            offset += host.size


class RestoreOnly(Checkpoint):
    """A checkpoint another rank writes: restore from it, never write it."""

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        pass


def rank_aware(dp: Any, callbacks: list[Callback]) -> list[Callback]:
    """fit's own ``callbacks`` as this rank should run them."""
    out: list[Callback] = []
    for cb in callbacks:
        if isinstance(cb, DeferInterrupt):
            out.append(SharedInterrupt(dp))
            cb = AverageBuffers(dp)  # first at each epoch's end
        elif isinstance(cb, Validation):
            cb = ShardedValidation(dp, cb.X, cb.T, cb.labels)
        elif isinstance(cb, LossTrend) and (not dp.is_root or dp.X is not None):
            continue
        elif not dp.is_root and isinstance(cb, (PrintEpochs, ProgressBar)):
            continue
        elif not dp.is_root and isinstance(cb, Checkpoint):
            quiet = RestoreOnly.__new__(RestoreOnly)
            quiet.__dict__.update(cb.__dict__)
            cb = quiet
        out.append(cb)
    return out
