"""The fit loop: minibatches on the device, one readback per epoch.

Data is copied to the device once per fit; batches are gathered there with
``take`` from a permutation drawn on the host generator (so every device sees
the same batch order); loss and accuracy accumulate on the device and come
back once per epoch (or every ``log_every`` steps).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bpnet import io
from bpnet.nn import validation as check
from bpnet.nn.evaluation import _evaluate_device, _labels
from bpnet.nn.losses import Loss, MeanSquaredError, get_loss
from bpnet.train import checkpoint as ckpt
from bpnet.train.epoch import _copy, _Epoch
from bpnet.train.history import DivergenceError, History
from bpnet.train.optimizers import Optimizer, get_optimizer


class _DeferInterrupt:
    """Hold Ctrl-C until the current step has finished updating the weights."""

    def __init__(self) -> None:
        self.pending = False
        self._old: Any = None

    def __enter__(self) -> _DeferInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self.pending = True

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _call_callbacks(callbacks: Sequence[Any], epoch: int, logs: dict, net: Any) -> bool:
    """Run on-epoch-end callbacks; True when one asks to stop."""
    stop = False
    for cb in callbacks:
        fn = getattr(cb, "on_epoch_end", cb)
        if fn(epoch, logs, net) is True:
            stop = True
    return stop


def _split(net: Any, X: Any, T: Any, fraction: float) -> tuple[Any, Any, Any, Any]:
    """Hold out ``fraction`` of the rows (drawn on the host generator)."""
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
    return (
        xp.take(X, train, axis=0),
        xp.take(T, train, axis=0),
        xp.take(X, val, axis=0),
        xp.take(T, val, axis=0),
    )


def fit(
    net: Any,
    X: Any,
    y: Any,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str | Optimizer = "sgd",
    lr: float | None = None,
    l2: float = 0.0,
    loss: str | Loss | None = None,
    validation_data: tuple[Any, Any] | None = None,
    validation_fraction: float = 0.0,
    early_stopping: bool = False,
    patience: int = 10,
    min_delta: float = 0.0,
    shuffle: bool = True,
    verbose: int = 0,
    progress: bool = False,
    callbacks: Sequence[Callable | Any] = (),
    log_every: int | None = None,
    history: History | None = None,
    start_epoch: int = 0,
    print_fn: Callable[[str], None] = print,
    cuda_graph: bool | None = None,
    checkpoint: Any = None,
    resume: bool = False,
    checkpoint_metadata: dict[str, Any] | None = None,
) -> History:
    """Train ``net`` with minibatch gradient descent.

    Parameters
    ----------
    net : Sequential
    X : array of shape (n_samples, n_features)
        Host (NumPy) or on the network's device; copied to the device once.
    y : array of shape (n_samples,) labels or (n_samples, n_outputs) targets
    epochs : int
        Passes over the training data (counted from ``start_epoch``).
    batch_size : int
        Rows per step; the last batch of an epoch may be smaller.
    optimizer : {"sgd", "momentum", "nesterov", "adam"} or Optimizer
    lr : float, optional
        Learning rate (overrides the optimizer's).
    l2 : float
        Weight penalty ``l2 / (2 n) * sum(W**2)`` per batch of n rows.
    loss : str or Loss, optional
        Defaults to the network's loss.
    validation_data : (X_val, y_val), optional
    validation_fraction : float
        Hold out this fraction of the training rows when no validation_data.
    early_stopping : bool
        Stop when ``val_loss`` has not improved by ``min_delta`` for
        ``patience`` epochs, and restore the best weights.
    shuffle : bool
        Reshuffle every epoch from the network's host generator.
    verbose : int
        1: one line per epoch.
    progress : bool
        A tqdm progress bar over the steps.
    callbacks : callables ``cb(epoch, logs, net)`` or objects with ``on_epoch_end``
        A callback returning True stops training after that epoch.
    log_every : int, optional
        Also check the loss for NaN/Inf every this many steps (one readback each).
    checkpoint : str or Path, optional
        Write a checkpoint there after every epoch (atomically: a crash or a
        kill never leaves a broken file; the previous one stays loadable).
    resume : bool
        With ``checkpoint``: if that file exists, restore the weights,
        optimizer state, random generators and history from it and train up
        to ``epochs`` in total. Same seed and data: the same final weights as
        a run that never stopped.
    checkpoint_metadata : dict, optional
        JSON-ready metadata written into every checkpoint (``bpnet-train``
        records there which data the run trains on).
    cuda_graph : bool, optional
        Replay each epoch after the first as one captured CUDA graph where the
        backend supports it (CuPy). Default: on when supported, off with
        Dropout or ``log_every``. False forces the plain loop.

    Returns
    -------
    History
        ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``.

    Raises
    ------
    DivergenceError
        The loss became NaN or Inf; the weights of the last good epoch (or
        checked step) are restored first.
    """
    epochs = check.check_int(epochs, "epochs", minimum=0)
    batch_size = check.check_int(batch_size, "batch_size")
    patience = check.check_int(patience, "patience")
    l2 = check.check_nonnegative(l2, "l2")
    min_delta = check.check_nonnegative(min_delta, "min_delta")
    if log_every is not None:
        log_every = check.check_int(log_every, "log_every")
    fraction = check.check_nonnegative(validation_fraction, "validation_fraction")
    if fraction >= 1:
        raise ValueError(
            "validation_fraction: expected a number in [0, 1), "
            f"got {validation_fraction!r}"
        )
    opt = get_optimizer(optimizer, lr)
    loss = net.loss if loss is None else get_loss(loss)
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    for cb in callbacks:
        if not callable(getattr(cb, "on_epoch_end", cb)):
            raise TypeError(f"callbacks: expected callables, got {cb!r}")
    history = History() if history is None else history
    be = net.backend

    with be.context():
        Xd, T = net._prepare(X, y, loss)
        if validation_data is not None:
            if (
                not isinstance(validation_data, (tuple, list))
                or len(validation_data) != 2
            ):
                raise ValueError("validation_data: expected a pair (X_val, y_val)")
            Xv, Tv = net._prepare(*validation_data, loss)
        elif fraction > 0:
            Xd, T, Xv, Tv = _split(net, Xd, T, fraction)
        else:
            Xv = Tv = None
        if early_stopping and Xv is None:
            raise ValueError(
                "early_stopping: needs validation data; pass validation_data or "
                "validation_fraction > 0"
            )
        if resume and checkpoint is None:
            raise ValueError("resume: needs checkpoint=PATH to resume from")
        # early stopping's state; every checkpoint keeps it
        early = {"best_loss": math.inf, "best_epoch": None, "wait": 0, "weights": None}
        if resume and _exists(checkpoint):
            records, done, saved_early = ckpt.restore_run(checkpoint, net, opt)
            history = History(records)
            start_epoch, epochs = done, max(0, epochs - done)
            if early_stopping and saved_early is not None:
                history.stopped_early = saved_early.pop("stopped")
                early.update(saved_early)
                if history.stopped_early:  # that run had ended: nothing to train
                    epochs = 0
        fit_config = {
            "epochs": start_epoch + epochs,
            "batch_size": batch_size,
            "l2": l2,
            "loss": type(loss).__name__,
            "validation_fraction": fraction,
            "early_stopping": early_stopping,
            "patience": patience,
            "min_delta": min_delta,
            "shuffle": shuffle,
        }
        track_accuracy = not isinstance(loss, MeanSquaredError) or T.shape[1] > 1
        labels = _labels(T, loss)
        labels_v = _labels(Tv, loss) if Xv is not None else None
        n = Xd.shape[0]
        steps = math.ceil(n / batch_size)
        epoch_run = _Epoch(
            net, opt, loss, l2, Xd, T, labels, batch_size, shuffle, track_accuracy
        )
        use_graph = _want_graph(cuda_graph, net, log_every)
        replay = None
        bar = _progress(progress, epochs * steps)
        last_good = _copy(net.parameters())
        try:
            with _DeferInterrupt() as interrupt, be.errstate():

                def after_step(s: int, L: Any) -> None:
                    interrupt.check()
                    if bar is not None:
                        bar.update(1)
                    if log_every and (s + 1) % log_every == 0:
                        if not math.isfinite(float(L)):
                            _diverged(net, last_good, opt, epoch, s, history)

                for epoch in range(start_epoch, start_epoch + epochs):
                    t0 = time.perf_counter()
                    opt.set_epoch(epoch)
                    if shuffle:
                        epoch_run.set_order(be.asarray(net.host_rng.permutation(n)))
                    if replay is not None:
                        replay()  # the whole epoch as one CUDA graph
                        opt.t += steps
                        interrupt.check()
                        if bar is not None:
                            bar.update(steps)
                    else:
                        epoch_run(after_step)
                        if use_graph:  # kernels are compiled now: capture the rest
                            replay = _capture(be, epoch_run)
                            history.cuda_graph = replay is not None
                    be.synchronize()
                    train_loss = float(epoch_run.loss_sum) / n
                    if not math.isfinite(train_loss):
                        _diverged(net, last_good, opt, epoch, steps - 1, history)
                    logs: dict[str, Any] = {
                        "epoch": epoch + 1,
                        "loss": train_loss,
                        "accuracy": (
                            float(epoch_run.correct) / n if track_accuracy else None
                        ),
                        "lr": opt.lr,
                    }
                    if Xv is not None:
                        vl, vc = _evaluate_device(net, Xv, Tv, labels_v, loss, 4096)
                        logs["val_loss"] = float(vl) / Xv.shape[0]
                        logs["val_accuracy"] = (
                            float(vc) / Xv.shape[0] if track_accuracy else None
                        )
                    logs["seconds"] = time.perf_counter() - t0
                    history.append(logs)
                    last_good = _copy(net.parameters())
                    if early_stopping:  # before the checkpoint, which keeps it
                        vl = logs["val_loss"]
                        if vl < early["best_loss"] - min_delta:
                            early.update(best_loss=vl, best_epoch=epoch, wait=0)
                            early["weights"] = last_good
                        else:
                            early["wait"] += 1
                            if early["wait"] >= patience:
                                history.stopped_early = True
                    if checkpoint is not None:
                        ckpt.save_checkpoint(
                            checkpoint,
                            net,
                            opt,
                            history,
                            epoch + 1,
                            fit_config,
                            metadata=checkpoint_metadata,
                            early=(
                                {**early, "stopped": history.stopped_early}
                                if early_stopping
                                else None
                            ),
                        )
                    if verbose:
                        print_fn(_epoch_line(logs, start_epoch + epochs))
                    if bar is not None:
                        bar.set_postfix(loss=f"{train_loss:.4f}")
                    stop = _call_callbacks(callbacks, epoch, logs, net)
                    if stop or (early_stopping and history.stopped_early):
                        break
        except Exception as exc:
            if be.is_out_of_memory(exc):
                net._assign(last_good)
                raise MemoryError(
                    f"batch_size: the device {be.name!r} ran out of memory training "
                    f"with batch_size={batch_size}; try a smaller batch_size (the "
                    "weights of the last finished epoch were kept)"
                ) from exc
            raise
        finally:
            if bar is not None:
                bar.close()
        if early_stopping and early["weights"] is not None:
            net._assign(early["weights"])
            history.best_epoch = early["best_epoch"] + 1
            if verbose and history.stopped_early:
                print_fn(
                    f"Early stopping: val_loss did not improve for {patience} epochs; "
                    f"restored the weights of epoch {history.best_epoch}"
                )
    return history


def _exists(path: Any) -> bool:
    p = os.fspath(path)
    return os.path.exists(p) or os.path.exists(p + ".npz")


def _capture(be: Any, epoch_run: Any) -> Any:
    """The epoch as a replayable graph, or None (then the plain loop goes on):
    a capture that fails has run nothing, so falling back loses no work."""
    try:
        return be.capture_graph(lambda: epoch_run(None))
    except Exception:
        return None


def _want_graph(cuda_graph: bool | None, net: Any, log_every: int | None) -> bool:
    from bpnet.nn.layers import Dropout

    supported = net.backend.supports_graphs
    if cuda_graph is None:
        dropout = any(isinstance(layer, Dropout) for layer in net.layers)
        rng_ok = not dropout or net.backend.graph_safe_random
        return supported and rng_ok and not log_every
    if cuda_graph and not supported:
        raise ValueError(
            f"cuda_graph: the {net.backend.name!r} backend cannot capture graphs; "
            "use cuda_graph=None or False"
        )
    return bool(cuda_graph)


def _diverged(
    net: Any,
    last_good: list[Any],
    opt: Optimizer,
    epoch: int,
    step: int,
    history: History,
) -> None:
    net._assign(last_good)
    raise DivergenceError(
        f"training diverged: the loss became NaN or Inf in epoch {epoch + 1} "
        f"(by step {step + 1}) with learning rate {opt.lr:g}. The last good weights "
        f"were restored. Try a smaller learning rate (e.g. lr={opt.lr / 10:g}) "
        "or scale the inputs to [0, 1].",
        history,
    )


def _epoch_line(logs: dict, epochs: int, names: dict[str, str] | None = None) -> str:
    """One epoch's line; ``names`` relabels columns (e.g. val_loss as test_loss)."""
    names = names or {}
    parts = [f"Epoch {logs['epoch']}/{epochs}"]
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if logs.get(k) is not None:
            parts.append(f"{names.get(k, k)}: {logs[k]:.4f}")
    parts.append(f"{logs['seconds']:.2f}s")
    return " - ".join(parts)


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", leave=False)


def resume(
    path: str | os.PathLike[str],
    X: Any,
    y: Any,
    *,
    device: Any = None,
    epochs: int | None = None,
    **fit_kwargs: Any,
) -> tuple[Any, Any]:
    """Rebuild the network and optimizer saved in checkpoint ``path`` and train
    on ``X``, ``y`` up to the run's total epochs (or ``epochs``).

    Returns (net, history). ``fit_kwargs`` override the saved fit arguments.
    """
    net, _, training = io.load_checkpoint(path, device=device)
    if "fit" not in training:
        raise ValueError(
            f"resume: {os.fspath(path)!r} is a model file, not a checkpoint"
        )
    kwargs = dict(training["fit"])
    kwargs.update(fit_kwargs)
    kwargs["optimizer"] = ckpt.optimizer_from_config(training["optimizer"])
    saved_total = kwargs.pop("epochs")
    total = saved_total if epochs is None else epochs
    # A fresh network with the run's seed: the validation split and the
    # generators then replay exactly what the first run drew.
    fresh = type(net).from_config(net.get_config(), device=net.backend)
    history = fit(fresh, X, y, epochs=total, checkpoint=path, resume=True, **kwargs)
    return fresh, history
