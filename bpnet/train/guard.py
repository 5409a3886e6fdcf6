"""The divergence guard: training whose loss stops being a number stops,
with the last good weights restored.

Cheap by design: the loss is read once per epoch (it is anyway);
``log_every`` adds a loss readback every that many steps.
"""

from __future__ import annotations

import math
from typing import Any

from bpnet.train.callbacks import Callback, Run
from bpnet.train.history import DivergenceError


def _diverged(run: Run, what: str, epoch: int, step: int) -> None:
    run.restore_good()
    opt = run.optimizer
    raise DivergenceError(
        f"training diverged: {what} in epoch {epoch + 1} (by step {step + 1}) with "
        f"learning rate {opt.lr:g}. The last good weights were restored. Try a "
        f"smaller learning rate (e.g. lr={opt.lr / 10:g}) or scale the inputs "
        "to [0, 1].",
        run.history,
    )


class DivergenceGuard(Callback):
    """At each epoch's end: the loss must be finite, else DivergenceError
    with the last good weights back."""

    def on_train_begin(self, run: Run) -> None:
        self.run = run

    def on_epoch_begin(self, epoch: int, net: Any) -> None:
        if self.run.good is None:  # after any resume, before the first step
            self.run.keep_good()

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        last = self.run.steps - 1
        if not math.isfinite(logs["loss"]):
            _diverged(self.run, "the loss became NaN or Inf", epoch, last)
        self.run.keep_good()


class LossCheck(Callback):
    """Also read the step's loss every ``log_every`` steps (one readback each)."""

    def __init__(self, log_every: int) -> None:
        self.log_every = log_every
        self.epoch = 0

    def on_train_begin(self, run: Run) -> None:
        self.run = run

    def on_epoch_begin(self, epoch: int, net: Any) -> None:
        self.epoch = epoch

    def on_step_end(self, step: int, logs: dict, net: Any) -> None:
        L = logs["loss"]
        if L is not None and (step + 1) % self.log_every == 0:
            if not math.isfinite(float(L)):
                _diverged(self.run, "the loss became NaN or Inf", self.epoch, step)
