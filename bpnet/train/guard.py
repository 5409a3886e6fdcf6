"""The divergence guard: training that stops being numbers stops, with the
last good weights restored, and a run that made the loss worse says so.

Cheap by design: the loss is read once per epoch (it is anyway), the weights
are checked with one device reduction per epoch, and a fixed sample of rows
is evaluated twice per run. ``log_every`` adds a loss readback every that
many steps.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import warnings
from typing import Any

from bpnet.train.callbacks import Callback, Run
from bpnet.train.history import DivergenceError, TrainingWarning
from bpnet.train.optimizers import Optimizer

#: rows of the training data on which the loss is compared at start and end
TREND_ROWS = 1024


def suggest_lr(opt: Optimizer) -> str:
    """A tenth of the rate in use, to one significant digit, but never above
    the optimizer's default rate (a tenth of an absurd rate is still absurd)."""
    tenth = float(f"{opt.lr / 10:.0e}")
    default = _default_lr(opt)
    return f"{min(tenth, default):g}"


def _default_lr(opt: Optimizer) -> float:
    param = inspect.signature(type(opt)).parameters.get("lr")
    default = getattr(param, "default", None)
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return float(default)
    return 0.1  # plain SGD's, as bpnet.fit picks it


def _diverged(run: Run, what: str, epoch: int, step: int) -> None:
    run.restore_good()
    opt = run.optimizer
    raise DivergenceError(
        f"training diverged: {what} in epoch {epoch + 1} (by step {step + 1}) with "
        f"learning rate {opt.lr:g}. The last good weights were restored. Try a "
        f"smaller learning rate (e.g. lr={suggest_lr(opt)}) or scale the inputs "
        "to [0, 1].",
        run.history,
    )


def weights_sum_of_squares(net: Any) -> Any:
    """One 0-D device number that is NaN or Inf when any weight (or buffer,
    such as a running variance) is, or when the weights are so large that
    the next forward pass overflows."""
    xp = net.xp
    return sum(xp.sum(p * p) for p in net.parameters() + net.buffers())


class DivergenceGuard(Callback):
    """At each epoch's end, after its last step: the loss and the weights
    must be finite, else DivergenceError with the last good weights back."""

    def on_train_begin(self, run: Run) -> None:
        self.run = run
        self.first = True  # the first epoch of this call is compared with its start

    def on_epoch_begin(self, epoch: int, net: Any) -> None:
        if self.run.good is None:  # after any resume, before the first step
            self.run.keep_good()

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        last = self.run.steps - 1
        if not math.isfinite(logs["loss"]):
            _diverged(self.run, "the loss became NaN or Inf", epoch, last)
        now = float(weights_sum_of_squares(net))
        if not math.isfinite(now):
            what = "the weights became NaN or Inf (or too large for the dtype)"
            _diverged(self.run, what, epoch, last)
        if self.first and self.run.good is not None:
            self.first = False
            xp = net.xp
            same = [xp.all(p == g) for p, g in zip(net.parameters(), self.run.good)]
            if same and all(bool(s) for s in same):
                self._unchanged(epoch, net)
        self.run.keep_good()

    def _unchanged(self, epoch: int, net: Any) -> None:
        opt = self.run.optimizer
        warnings.warn(
            TrainingWarning(
                f"training changed no weight in epoch {epoch + 1}: with learning "
                f"rate {opt.lr:g} every update is below the precision of "
                f"{net.dtype_name} weights and rounds away; use a larger learning "
                f"rate (e.g. lr={_default_lr(opt):g})"
            ),
            stacklevel=_caller_level(),
        )
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


class LossTrend(Callback):
    """Warn (TrainingWarning) when the loss on a fixed sample of the training
    rows is higher after the last step than before the first. Placed before
    early stopping, whose restored best weights are not the run's end.

    A resumed run compares with the start of the whole run, which its
    checkpoint keeps (``run.trend_start``); one from a checkpoint that does
    not keep it compares with where it was resumed, and says so."""

    def on_train_begin(self, run: Run) -> None:
        self.run, self.start, self.since = run, None, "the start of the run"

    def on_epoch_begin(self, epoch: int, net: Any) -> None:
        if self.start is not None:
            return
        run = self.run
        stride = max(1, run.n // TREND_ROWS)
        m = min(TREND_ROWS, math.ceil(run.n / stride))  # slices stay in bounds
        self.X = run.X[::stride, ...][:m, ...]
        self.T = run.T[::stride, ...][:m, ...]
        self.W = None  # with sample weights, the loss that fit minimises
        if run.weights is not None:
            W = run.weights[::stride, ...][:m, ...]
            self.W = W / run.net.xp.sum(W)
        if run.trend_start is not None:  # a resumed run: its start, kept
            self.start = run.trend_start
            return
        if epoch > 0:
            self.since = f"epoch {epoch}, where this resumed run began"
        self.start = self._loss(run)  # read back at the end, with the other
        _check_scale(self.X, run.net)
        run.trend_start = self.start

    def _loss(self, run: Run) -> Any:
        Z = run.net._forward(self.X, training=False)
        if self.W is None:
            return run.loss.forward(Z, self.T)
        return run.loss.loss_and_grad(Z, self.T, need_grad=False, weights=self.W)[0]

    def on_train_end(self, run: Run) -> None:
        if run.error is not None or self.start is None:
            return
        start, end = float(self.start), float(self._loss(run))
        if end > 1.01 * start:  # more than rounding and drift
            warnings.warn(
                TrainingWarning(
                    f"training made the loss worse: it rose from {start:.4g} at "
                    f"{self.since} to {end:.4g} at its end (on the same "
                    f"{self.X.shape[0]} training rows). The learning rate "
                    f"{run.optimizer.lr:g} is probably too large; try "
                    f"lr={suggest_lr(run.optimizer)}."
                ),
                stacklevel=_caller_level(),
            )


#: inputs beyond this size are far outside what initial weights expect
LARGE_INPUT = 1e6


def _check_scale(X: Any, net: Any) -> None:
    """Warn (TrainingWarning) when the sampled training rows ``X`` are all the
    same, or far larger than the order-1 inputs a network starts from."""
    xp = net.xp
    if X.shape[0] == 0:
        return
    largest = float(xp.max(xp.abs(X)))
    if X.shape[0] > 1 and bool(xp.all(xp.max(X, axis=0) == xp.min(X, axis=0))):
        warnings.warn(
            TrainingWarning(
                f"X: all {X.shape[0]} training rows looked at are the same (every "
                "feature is constant): there is no signal to learn from, only the "
                "class frequencies; check how X was made"
            ),
            stacklevel=_caller_level(),
        )
    elif largest > LARGE_INPUT:
        warnings.warn(
            TrainingWarning(
                f"X: values as large as {largest:.3g}, far outside the order-1 "
                "scale a network's initial weights expect, so it learns little; "
                "standardise X (e.g. sklearn.preprocessing.StandardScaler) or "
                "scale it to [0, 1]"
            ),
            stacklevel=_caller_level(),
        )


def _caller_level() -> int:
    """``stacklevel`` that names the first caller outside bpnet.train."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        here
    ):
        frame, level = frame.f_back, level + 1
    return level
