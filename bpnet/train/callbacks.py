"""What a fit does besides its steps, as callbacks around a short loop.

``fit`` (``bpnet.train.loop``) runs epochs of device steps and calls each
callback's hooks in list order: its own (history, validation, early stopping,
checkpoints, the divergence guard in ``bpnet.train.guard``, verbose lines, the
progress bar, deferred Ctrl-C), then the user's. A user callback is a
``Callback`` subclass, any object with some of the hook methods, or a plain
callable ``cb(epoch, logs, net)``; an ``on_epoch_end`` returning True stops
training after that epoch.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bpnet.io.fingerprint import (
    DataFileChangedError,
    file_change,
    file_state,
    fingerprint,
)
from bpnet.nn.evaluation import _evaluate_device
from bpnet.nn.losses import Loss
from bpnet.train import checkpoint as ckpt
from bpnet.train.epoch import _copy
from bpnet.train.history import History
from bpnet.train.optimizers import Optimizer

HOOKS = ("on_train_begin", "on_epoch_begin", "on_step_end", "on_epoch_end")
HOOKS += ("on_train_end",)


@dataclass
class Run:
    """What the loop shares with its callbacks (``on_train_begin`` gets it).

    ``epochs`` counts the epochs this call trains, from ``start_epoch``
    (a resume changes both); ``steps`` is the steps per epoch; ``print``
    writes a line (through the progress bar when one is shown); ``good`` is
    a copy of the weights after the last epoch that passed the divergence
    check (``good_buffers``: of the layers' buffers, running statistics);
    ``error`` is the exception that ended training, if one did;
    ``trend_start`` is the loss on the loss trend's sample before the run's
    first step (a 0-D device array until a checkpoint reads it back; after
    a resume, the number the checkpoint kept), or None.
    """

    net: Any
    optimizer: Optimizer
    loss: Loss
    history: History
    X: Any
    T: Any
    labels: Any
    epochs: int
    start_epoch: int
    batch_size: int
    shuffle: bool
    l2: float
    track_accuracy: bool
    print: Callable[[str], None]
    good: list[Any] | None = None
    good_buffers: list[Any] | None = None
    error: BaseException | None = None
    epoch_start: float = 0.0
    weights: Any = None  # (n, 1) sample weights on the device, or None
    trend_start: Any = None

    @property
    def n(self) -> int:
        # T's rows: a memory-mapped X keeps the rows of weight 0 it skips
        return self.T.shape[0]

    @property
    def steps(self) -> int:
        return math.ceil(self.n / self.batch_size)

    @property
    def total_epochs(self) -> int:
        return self.start_epoch + self.epochs

    def keep_good(self) -> None:
        self.good = _copy(self.net.parameters())
        self.good_buffers = _copy(self.net.buffers())

    def restore_good(self) -> None:
        if self.good is not None:
            self.net._assign(self.good)
            self.net.set_buffers(self.good_buffers)


class Callback:
    """Hooks into ``fit``; override the ones you need.

    ``on_step_end`` gets ``logs = {"loss": the step's 0-D device loss,
    "steps": 1}``; reading the loss (``float``) costs a device round trip.
    A callback that overrides ``on_step_end`` keeps ``fit`` on the plain loop
    (no CUDA-graph replay) unless it sets ``every_step = False``: then, when
    an epoch is replayed as one graph, it gets one call after the epoch with
    ``logs = {"loss": None, "steps": steps in the epoch}``.
    """

    every_step = True

    def on_train_begin(self, run: Run) -> None:
        """Before the first epoch; ``run`` holds the net, optimizer, history."""

    def on_epoch_begin(self, epoch: int, net: Any) -> None:
        """Before the epoch's steps (``epoch`` counts from 0)."""

    def on_step_end(self, step: int, logs: dict, net: Any) -> None:
        """After step ``step`` (from 0 in each epoch) updated the weights."""

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> bool | None:
        """After the epoch; ``logs`` has loss, accuracy, lr (and val_loss,
        val_accuracy, seconds from the callbacks before). True stops."""
        return None

    def on_train_end(self, run: Run) -> None:
        """Always, also when an exception ends training (``run.error``)."""


class _Hooks(Callback):
    """A plain callable ``cb(epoch, logs, net)`` (run at each epoch's end), or
    an object with some of the hook methods."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.every_step = getattr(obj, "every_step", True)
        if not any(callable(getattr(obj, h, None)) for h in HOOKS):
            self.on_epoch_end = obj  # type: ignore[method-assign]
            return
        for h in HOOKS:
            if callable(getattr(obj, h, None)):
                setattr(self, h, getattr(obj, h))


def as_callback(obj: Any) -> Callback:
    """``obj`` as a Callback; a TypeError names what is accepted."""
    if isinstance(obj, Callback):
        return obj
    if callable(obj) or any(callable(getattr(obj, h, None)) for h in HOOKS):
        return _Hooks(obj)
    raise TypeError(
        "callbacks: expected Callback objects, objects with on_epoch_end (or "
        f"another hook), or callables cb(epoch, logs, net); got {obj!r}"
    )


def overrides(cb: Callback, hook: str) -> bool:
    """Whether ``cb`` does something in ``hook``."""
    fn = getattr(cb, hook)
    return getattr(fn, "__func__", None) is not getattr(Callback, hook)


class Validation(Callback):
    """Adds ``val_loss`` and ``val_accuracy`` on held-out data to each epoch."""

    def __init__(self, X: Any, T: Any, labels: Any) -> None:
        self.X, self.T, self.labels = X, T, labels

    def on_train_begin(self, run: Run) -> None:
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        m = self.X.shape[0]
        vl, vc = _evaluate_device(net, self.X, self.T, self.labels, self.run.loss, 4096)
        logs["val_loss"] = float(vl) / m
        logs["val_accuracy"] = float(vc) / m if self.run.track_accuracy else None


class RecordHistory(Callback):
    """Times each epoch and appends its logs to ``run.history``."""

    def on_train_begin(self, run: Run) -> None:
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        logs["seconds"] = time.perf_counter() - self.run.epoch_start
        self.run.history.append(logs)


class EarlyStopping(Callback):
    """Stop when ``val_loss`` has not improved by ``min_delta`` for
    ``patience`` epochs; at the end, restore the best epoch's weights."""

    def __init__(self, patience: int, min_delta: float, verbose: int = 0) -> None:
        self.patience, self.min_delta, self.verbose = patience, min_delta, verbose
        self.state: dict[str, Any] = {
            "best_loss": math.inf,
            "best_epoch": None,
            "wait": 0,
            "weights": None,
            "buffers": None,
        }

    def on_train_begin(self, run: Run) -> None:
        self.run = run

    def load(self, saved: dict) -> bool:
        """Take a checkpoint's state; return whether that run had stopped."""
        saved = dict(saved)
        stopped = bool(saved.pop("stopped"))
        self.state.update(saved)
        return stopped

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> bool:
        state, history = self.state, self.run.history
        if logs["val_loss"] < state["best_loss"] - self.min_delta:
            state.update(best_loss=logs["val_loss"], best_epoch=epoch, wait=0)
            state["weights"] = self.run.good  # this epoch's, checked
            state["buffers"] = self.run.good_buffers
        else:
            state["wait"] += 1
            if state["wait"] >= self.patience:
                history.stopped_early = True
        return history.stopped_early

    def on_train_end(self, run: Run) -> None:
        if run.error is not None or self.state["weights"] is None:
            return
        run.net._assign(self.state["weights"])
        if self.state.get("buffers") is not None:
            run.net.set_buffers(self.state["buffers"])
        run.history.best_epoch = self.state["best_epoch"] + 1
        if self.verbose and run.history.stopped_early:
            run.print(
                f"Early stopping: val_loss did not improve for {self.patience} "
                f"epochs; restored the weights of epoch {run.history.best_epoch}"
            )


class Checkpoint(Callback):
    """Write a checkpoint after every epoch (atomically); with ``resume``,
    first restore the run saved there, if there is one. ``data`` is the
    fingerprint of the training data: recorded in every checkpoint, and a
    resume from one trained on other data is refused."""

    every_step = False

    def __init__(
        self,
        path: Any,
        fit_config: dict,
        metadata: dict | None = None,
        resume: bool = False,
        early: EarlyStopping | None = None,
        data: dict | None = None,
    ) -> None:
        self.path, self.fit_config, self.metadata = path, fit_config, metadata
        self.resume, self.early, self.data = resume, early, data

    def on_train_begin(self, run: Run) -> None:
        self.run = run
        if self.resume and _exists(self.path):
            records, done, saved_early, trend = ckpt.restore_run(
                self.path, run.net, run.optimizer, self.data
            )
            run.history = History(records)
            run.trend_start = trend
            run.start_epoch, run.epochs = done, max(0, run.total_epochs - done)
            if self.early is not None and saved_early is not None:
                run.history.stopped_early = self.early.load(saved_early)
                if run.history.stopped_early:  # that run had ended
                    run.epochs = 0
        self.config = {"epochs": run.total_epochs, **self.fit_config}

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        history = self.run.history
        early = None
        if self.early is not None:
            early = {**self.early.state, "stopped": history.stopped_early}
        if self.run.trend_start is not None:  # read back once, then a number
            self.run.trend_start = float(self.run.trend_start)
        ckpt.save_checkpoint(
            self.path,
            net,
            self.run.optimizer,
            history,
            epoch + 1,
            self.config,
            metadata=self.metadata,
            early=early,
            data=self.data,
            trend_start=self.run.trend_start,
        )


class WatchFiles(Callback):
    """Memory-mapped data files that training reads through are checked at
    every epoch's start and end: ``os.stat`` (size, modification time,
    inode) first, then, the file still the same size, the array's
    fingerprint (a bounded read, ``bpnet.io.fingerprint``), which also sees
    a rewrite within one tick of the file system's clock. A change stops
    training with ``DataFileChangedError`` naming the file, the weights of
    the last epoch before the change restored and no checkpoint written for
    the epoch. Runs before the divergence guard keeps an epoch's weights."""

    every_step = False

    def __init__(self, files: dict[str, tuple[str, Any]]) -> None:
        self.files = files  # path -> (what it holds, the memory map)
        self.before: dict[str, Any] = {}

    def on_train_begin(self, run: Run) -> None:
        self.run = run
        self.before = {
            path: (file_state(path), fingerprint(array)["blake2b"])
            for path, (_, array) in self.files.items()
        }

    def _check(self, epoch: int, when: str) -> None:
        for path, (what, array) in self.files.items():
            state, digest = self.before[path]
            change = file_change(path, state)  # before the map is touched
            if change is None and fingerprint(array)["blake2b"] != digest:
                change = "it was rewritten in place"
            if change is not None:
                self.run.restore_good()
                raise DataFileChangedError(
                    f"{what}: the file {path} changed during training ({change}) "
                    f"{when} epoch {epoch + 1}; training stopped with the weights "
                    "of the last epoch before the change, and no checkpoint was "
                    "written for this epoch. Restore the file (a resume checks "
                    "the data against the checkpoint's fingerprint) or start a "
                    "new run"
                )

    def on_epoch_begin(self, epoch: int, net: Any) -> None:
        self._check(epoch, "before")

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        self._check(epoch, "in")


def _exists(path: Any) -> bool:
    p = os.fspath(path)
    return os.path.exists(p) or os.path.exists(p + ".npz")


def epoch_line(logs: dict, epochs: int, names: dict[str, str] | None = None) -> str:
    """One epoch's line; ``names`` relabels columns (e.g. val_loss as test_loss)."""
    names = names or {}
    parts = [f"Epoch {logs['epoch']}/{epochs}"]
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if logs.get(k) is not None:
            parts.append(f"{names.get(k, k)}: {logs[k]:.4f}")
    parts.append(f"{logs['seconds']:.2f}s")
    return " - ".join(parts)


class PrintEpochs(Callback):
    """One line per epoch through ``run.print``; ``names`` relabels columns."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = names

    def on_train_begin(self, run: Run) -> None:
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        self.run.print(epoch_line(logs, self.run.total_epochs, self.names))


class ProgressBar(Callback):
    """A tqdm bar over the steps; lines printed meanwhile go through it
    (``tqdm.external_write_mode``), so a line never lands on the bar's."""

    every_step = False

    def on_train_begin(self, run: Run) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=run.epochs * run.steps, unit="step", leave=False)
        plain = run.print

        def through_bar(line: str) -> None:
            with tqdm.external_write_mode():
                plain(line)

        run.print = through_bar

    def on_step_end(self, step: int, logs: dict, net: Any) -> None:
        self.bar.update(logs["steps"])

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def on_train_end(self, run: Run) -> None:
        self.bar.close()


class DeferInterrupt(Callback):
    """Hold Ctrl-C until the current step has finished updating the weights,
    then raise KeyboardInterrupt. One that arrives while the last epoch
    ends (validation, history, the checkpoint's write), with no step after
    it, is raised once every callback has finished that epoch, and one that
    arrives later once training has ended: ``fit`` never returns past a
    Ctrl-C."""

    every_step = False

    def __init__(self) -> None:
        self.pending = False
        self._old: Any = None

    def on_train_begin(self, run: Run) -> None:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)

    def _handler(self, signum: int, frame: Any) -> None:
        self.pending = True

    def on_step_end(self, step: int, logs: dict, net: Any) -> None:
        if self.pending:
            raise KeyboardInterrupt

    def on_train_end(self, run: Run) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
