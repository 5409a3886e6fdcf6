"""The fit loop: epochs of device steps, and callbacks around them.

Data is copied to the device once per fit; batches are gathered there with
``take`` from a permutation drawn on the host generator (so every device sees
the same batch order); loss and accuracy accumulate on the device and come
back once per epoch (or every ``log_every`` steps). Everything optional
(history, validation, early stopping, checkpoints, the divergence guard,
printing, the progress bar, deferred Ctrl-C) is a callback
(``bpnet.train.callbacks``, ``bpnet.train.guard``). Here ``fit`` checks its
arguments and builds the run; the data reaches the device in
``bpnet.train.device_data`` and the epochs run in ``bpnet.train.trainer``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from bpnet import io
from bpnet.io.fingerprint import data_fingerprint, fingerprint, mapped_file
from bpnet.nn import validation as check
from bpnet.nn.evaluation import _labels
from bpnet.nn.losses import Loss, get_loss
from bpnet.train import checkpoint as ckpt
from bpnet.train.arguments import check_bool, check_checkpoint_path
from bpnet.train.callbacks import (
    Callback,
    Checkpoint,
    DeferInterrupt,
    EarlyStopping,
    PrintEpochs,
    ProgressBar,
    RecordHistory,
    Run,
    Validation,
    WatchFiles,
    as_callback,
)
from bpnet.train.device_data import _check_fraction, _device_data
from bpnet.train.guard import DivergenceGuard, LossCheck, LossTrend
from bpnet.train.history import History
from bpnet.train.optimizers import OPTIMIZERS, Optimizer, get_optimizer
from bpnet.train.trainer import _Loop, train  # noqa: F401 (_Loop: its old home)


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
    sample_weight: Any = None,
    comm: Any = None,
) -> History:
    """Train ``net`` with minibatch gradient descent.

    Parameters
    ----------
    net : Sequential
    X : array of shape (n_samples, n_features)
        Host (NumPy) or on the network's device; copied to the device once.
    y : array of shape (n_samples,) labels or (n_samples, n_outputs) targets
    epochs : int, default 10
        Passes over the training data (counted from ``start_epoch``).
    batch_size : int
        Rows per step; the last batch of an epoch may be smaller.
    optimizer : str or Optimizer, default "sgd"
        A registered name, one of: OPTIMIZER_NAMES (``OPTIMIZERS.names()``),
        or an Optimizer instance. ``fit``'s defaults (plain SGD, 10 epochs)
        are the seed notebooks' minibatch gradient descent, whose every step
        can be followed by hand; ``bpnet-train``'s (Adam, 40 epochs) are a
        ready-made run that reaches a good test accuracy with no flags. Pass
        ``optimizer="adam", epochs=40`` for the command's run.
    lr : float, optional
        Learning rate (overrides the optimizer's ``suggested_lr``).
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
    callbacks : Callback objects, objects with some of its hooks, or callables
        ``cb(epoch, logs, net)`` run at each epoch's end; an ``on_epoch_end``
        returning True stops training after that epoch. They run after fit's
        own, in order (see ``bpnet.train.callbacks.Callback`` for the hooks).
    log_every : int, optional
        Also check the loss for NaN/Inf every this many steps (one readback each).
    checkpoint : str or Path, optional
        Write a checkpoint there after every epoch (atomically: a crash or a
        kill never leaves a broken file; the previous one stays loadable).
    resume : bool
        With ``checkpoint``: if that file exists, restore the weights,
        optimizer state, random generators and history from it and train up
        to ``epochs`` in total. Same seed and data: the same final weights as
        a run that never stopped. Every checkpoint records a fingerprint of
        ``X`` and ``y`` (shape, dtype, a hash of their bytes, sampled when
        large), and resuming on other data raises ``DataMismatchError`` (a
        ``ValueError``) naming X or y before anything changes.
    checkpoint_metadata : dict, optional
        JSON-ready metadata written into every checkpoint (``bpnet-train``
        records there which data the run trains on).
    sample_weight : array of shape (n_samples,), optional
        Weights >= 0 of the training rows: each batch's loss is their weighted
        mean (``Sequential.loss_and_grad``); rows of weight 0 are dropped.
        Validation rows are scored unweighted.
    comm : bpnet.distributed communicator, optional
        Train data-parallel across the ranks of an MPI job: every rank passes
        the same data and seed, takes its slice of each global batch of
        ``batch_size`` rows, and applies the same averaged update, so the
        weights match one process's (``sample_weight`` included). Only rank 0
        prints, draws the progress bar and writes checkpoints (docs/scaling.md).
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
        The loss or the weights became NaN or Inf (checked at each epoch's
        end, after its last step); the weights of the last good epoch are
        restored first, and no checkpoint is written for the bad epoch.

    Warns
    -----
    TrainingWarning
        The loss on a fixed sample of training rows ended higher than it
        started (the learning rate is probably too large).
    """
    epochs = check.check_int(epochs, "epochs", minimum=0)
    batch_size = check.check_int(batch_size, "batch_size")
    patience = check.check_int(patience, "patience")
    l2 = check.check_nonnegative(l2, "l2")
    min_delta = check.check_nonnegative(min_delta, "min_delta")
    if log_every is not None:
        log_every = check.check_int(log_every, "log_every")
    checkpoint = check_checkpoint_path(checkpoint)
    shuffle = check_bool(shuffle, "shuffle")
    fraction = _check_fraction(validation_fraction)
    opt = get_optimizer(optimizer, lr)
    loss = net.loss if loss is None else get_loss(loss)
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    user = [as_callback(cb) for cb in callbacks]
    if comm is not None and cuda_graph:
        raise ValueError(
            "cuda_graph: a data-parallel step reduces gradients between backward "
            "and update, which a captured graph cannot; leave cuda_graph unset"
        )
    dp = None if comm is None else comm.data_parallel(net)
    if dp is not None and not dp.is_root:  # one voice: rank 0 prints
        print_fn = _silent
    with net.backend.context():
        Xd, T, val, W = _device_data(
            net, X, y, loss, validation_data, fraction, sample_weight, dp
        )
        fingerprints: list[dict] = []

        def data() -> dict:  # X's and y's fingerprints, computed once if asked
            if not fingerprints:
                fingerprints.append(data_fingerprint(X, y, net.backend))
            return fingerprints[0]

        if dp is not None:  # before any step: every rank runs rank 0's run
            dp.check_same_run(
                _run_settings(net, opt, loss, data(), sample_weight, validation_data),
                {
                    "epochs": epochs,
                    "batch_size": batch_size,
                    "l2": l2,
                    "validation_fraction": fraction,
                    "early_stopping": early_stopping,
                    "patience": patience,
                    "min_delta": min_delta,
                    "shuffle": shuffle,
                    "checkpoint": None if checkpoint is None else str(checkpoint),
                    "resume": resume,
                },
            )
        opt.decay_mask = net.decay_mask()  # built now, the width known
        if early_stopping and val is None:
            raise ValueError(
                "early_stopping: needs validation data; pass validation_data or "
                "validation_fraction > 0"
            )
        if resume and checkpoint is None:
            raise ValueError("resume: needs checkpoint=PATH to resume from")
        if checkpoint is not None:  # refused now, not after an epoch of training
            _check_checkpointable(net, opt)
        run = Run(
            net=net,
            optimizer=opt,
            loss=loss,
            history=History() if history is None else history,
            X=Xd,
            T=T,
            labels=_labels(T, loss),
            epochs=epochs,
            start_epoch=start_epoch,
            batch_size=batch_size,
            shuffle=shuffle,
            l2=l2,
            track_accuracy=not _regression(loss) or T.shape[1] > 1,
            print=print_fn,
            weights=W,
        )
        early = EarlyStopping(patience, min_delta, verbose) if early_stopping else None
        saver = None
        if checkpoint is not None:
            fit_config = {
                "batch_size": batch_size,
                "l2": l2,
                "loss": type(loss).__name__,
                "validation_fraction": fraction,
                "early_stopping": early_stopping,
                "patience": patience,
                "min_delta": min_delta,
                "shuffle": shuffle,
            }
            meta = checkpoint_metadata
            saver = Checkpoint(checkpoint, fit_config, meta, resume, early, data())
        validation = val and Validation(*val, _labels(val[1], loss))
        own = _own_callbacks(validation, early, saver, log_every, verbose, progress)
        files = _watched_files(X, Xd, validation_data, val)
        if files:  # checked first at each epoch's end, before the guard
            own.insert(1, WatchFiles(files))
        if dp is not None:
            own = dp.callbacks(own)
        return train(run, own + user, cuda_graph, dp)


def _run_settings(
    net: Any,
    opt: Any,
    loss: Loss,
    data: dict[str, Any],
    sample_weight: Any,
    validation_data: Any,
) -> dict[str, Any]:
    """What defines a data-parallel run besides fit's numbers: the network
    (its layers, dtype and seed), the optimizer, the loss and fingerprints
    of the data (``data``: X's and y's), which every rank must share with
    rank 0."""
    be = net.backend
    try:
        optimizer: Any = opt.get_config()
    except (AttributeError, TypeError, ValueError):
        optimizer = {"type": type(opt).__name__, "lr": getattr(opt, "lr", None)}
    settings: dict[str, Any] = {
        "network": net.get_config(),
        "optimizer": optimizer,
        "loss": type(loss).__name__,
        **data,
        "sample_weight": None,
        "validation_data": None,
    }
    if sample_weight is not None:
        settings["sample_weight"] = fingerprint(sample_weight, be)
    if validation_data is not None:
        settings["validation_data"] = data_fingerprint(*validation_data, be)
    return settings


def _watched_files(
    X: Any, Xd: Any, validation_data: Any, val: Any
) -> dict[str, tuple[str, Any]]:
    """The memory-mapped files training goes on reading (a host backend
    that kept the map, or a data-parallel run that streams it), and what
    each holds."""
    files: dict[str, tuple[str, Any]] = {}
    if validation_data is not None and val is not None:
        path = mapped_file(validation_data[0], val[0])
        if path is not None:
            files[path] = ("validation_data X_val", validation_data[0])
    path = mapped_file(X, Xd)
    if path is not None:
        files[path] = ("X", X)
    return files


def _own_callbacks(
    validation: Callback | None,
    early: Callback | None,
    saver: Callback | None,
    log_every: int | None,
    verbose: int,
    progress: bool,
) -> list[Callback]:
    """fit's own callbacks, in the order their hooks run. Ctrl-C is checked
    first after each step. The guard sees an epoch before anything validates,
    records or saves it, so a diverged epoch leaves no trace. The loss trend
    is measured before early stopping restores its best weights. Validation
    completes the logs before they are recorded (with their seconds), early
    stopping updates its state before the checkpoint saves it, and lines are
    printed last; the user's callbacks come after all of these."""
    optional = [
        LossCheck(log_every) if log_every else None,
        validation,
        RecordHistory(),
        early,
        saver,
        PrintEpochs() if verbose else None,
        ProgressBar() if progress else None,
    ]
    own = [DeferInterrupt(), DivergenceGuard(), LossTrend()]
    return own + [cb for cb in optional if cb is not None]


def _regression(loss: Loss) -> bool:
    return loss.regression


def _silent(line: str) -> None:
    pass


def _check_checkpointable(net: Any, opt: Any) -> None:
    """What a checkpoint rebuilds on resume: the network from its config, the
    optimizer (and its schedule) from theirs."""
    net.check_rebuildable("checkpoint")
    try:
        config = opt.get_config()
        ckpt.optimizer_from_config(config)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        schedule = getattr(opt, "schedule", None)
        raise ValueError(
            f"checkpoint: a checkpoint rebuilds the optimizer from its config, "
            f"and {type(opt).__name__} with schedule {schedule!r:.60} cannot be "
            f"({exc}); register them (@bpnet.train.optimizers.OPTIMIZERS.register() "
            "on an optimizer class, SCHEDULES.register() on a Schedule subclass; a "
            "plain function cannot be), or leave checkpoint out"
        ) from None


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

    Returns (net, history). ``fit_kwargs`` override the saved fit arguments;
    the optimizer and its learning rate are the checkpoint's (its moments and
    schedule go on from where they were), so ``optimizer`` and ``lr`` are
    refused.
    """
    for key in ("optimizer", "lr"):
        if key in fit_kwargs:
            given = f"{fit_kwargs[key]!r:.60}"
            raise ValueError(
                f"{key}: the checkpoint's optimizer goes on where it stopped (its "
                f"state, learning rate and schedule); got {key}={given}. Start a "
                "new fit to train with another one"
            )
    net, _, training = io.load_checkpoint(
        path, device=device, check_state=ckpt.check_checkpoint
    )
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


def _list_optimizers(doc: str | None) -> str | None:
    """``fit``'s docstring with the registered optimizers' names filled in."""
    names = ", ".join(f'"{name}"' for name in OPTIMIZERS.names())
    return None if doc is None else doc.replace("OPTIMIZER_NAMES", names)


fit.__doc__ = _list_optimizers(fit.__doc__)
