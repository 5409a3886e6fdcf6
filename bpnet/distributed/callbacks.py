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


class RestoreOnly(Checkpoint):
    """A checkpoint another rank writes: restore from it, never write it."""

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        pass


def rank_aware(dp: Any, callbacks: list[Callback]) -> list[Callback]:
    """fit's own ``callbacks`` as this rank should run them."""
    out: list[Callback] = []
    for cb in callbacks:
        if isinstance(cb, DeferInterrupt):
            cb = SharedInterrupt(dp)
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
