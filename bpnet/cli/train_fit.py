"""``bpnet-train``'s training itself: on every row at once with scipy, or in
epochs of mini-batches with ``fit`` (a resumed run goes on from its
checkpoint); then the scores after training."""

from __future__ import annotations

import argparse
import math
import warnings
from typing import Any

from bpnet.cli.train_build import _optimizer
from bpnet.cli.train_resume import _checkpoint_path

# bpnet.fit's val_* columns, when the data watched is the test split
TEST_NAMES = {"val_loss": "test_loss", "val_accuracy": "test_accuracy"}


def _train_full_batch(
    net: Any, ds: Any, args: argparse.Namespace, say: Any, comm: Any
) -> tuple[dict, int]:
    """Train on every row at once with scipy (--optimizer cg, tnc, lbfgs);
    return the history and the iterations run."""
    from bpnet.train.fullbatch import minimize

    result = minimize(
        net,
        ds.X_train,
        ds.y_train,
        l2=args.l2,
        method=args.optimizer,
        maxiter=args.epochs,
        verbose=not args.quiet,
        print_fn=say,
        comm=comm,
    )
    history = {"loss": list(result.loss_curve)}
    epochs_run = len(result.loss_curve)
    stopped_short = not result.success and epochs_run < args.epochs
    if stopped_short and (comm is None or comm.is_root):  # one voice
        from bpnet.train.history import TrainingWarning

        said = f"{args.optimizer}: {result.message}"
        warnings.warn(said, TrainingWarning, stacklevel=3)
    return history, epochs_run


def _train_epochs(
    net: Any,
    ds: Any,
    args: argparse.Namespace,
    saved: Any,
    resume_total: int | None,
    say: Any,
    comm: Any,
    folder: Any,
) -> tuple[dict, int]:
    """Train in epochs of mini-batches with ``fit`` (or go on with a resumed
    run); return the history and the epochs run."""
    from bpnet.cli import train_args
    from bpnet.train.callbacks import PrintEpochs

    has_test = ds.X_test.shape[0] > 0
    epochs = args.epochs
    fraction = args.validation_fraction or (0.1 if args.early_stopping else 0.0)
    if args.iterations is not None:
        steps = math.ceil(ds.X_train.shape[0] / args.batch_size)
        epochs = math.ceil(args.iterations / steps)
    extra: dict[str, Any] = {}
    if saved is None:
        optimizer = _optimizer(args, epochs)
    else:
        from bpnet.train.checkpoint import optimizer_from_config

        training, epochs = saved[0], resume_total
        optimizer = optimizer_from_config(training["optimizer"])
        extra = {k: training["fit"][k] for k in ("min_delta", "shuffle")}
    # The test split is only watched, never used to stop: early stopping
    # holds out part of the training data instead. When the test split is
    # the one watched, its columns are named test_*, not val_*.
    watch_test = has_test and not fraction
    h = net.fit(
        ds.X_train,
        ds.y_train,
        epochs=epochs,
        batch_size=args.batch_size,
        optimizer=optimizer,
        l2=args.l2,
        validation_data=(ds.X_test, ds.y_test) if watch_test else None,
        validation_fraction=fraction,
        early_stopping=args.early_stopping,
        patience=args.patience,
        verbose=0 if args.quiet or watch_test else 1,
        # through fit's printer, so that lines go through a progress bar;
        # after fit's own, so the epoch's checkpoint is written first
        callbacks=([PrintEpochs(TEST_NAMES)] if watch_test and not args.quiet else [])
        + ([_Commit(folder)] if folder is not None else []),
        progress=args.progress,
        print_fn=say,
        checkpoint=_checkpoint_path(args),
        resume=bool(args.resume),
        checkpoint_metadata={"data": train_args.data_record(args)},
        comm=comm,
        **extra,
    )
    history = h.to_dict()
    if watch_test:
        history = {TEST_NAMES.get(k, k): v for k, v in history.items()}
    epochs_run = len(h)
    return history, epochs_run


def _evaluate(
    net: Any, ds: Any, args: argparse.Namespace, comm: Any
) -> tuple[float, float, float | None]:
    """The training loss and accuracy after training, and the test accuracy
    (None without a test split); in a --distributed job over every rank's
    rows."""
    has_test = ds.X_test.shape[0] > 0
    test_acc = None  # --test-size 0: every row trained, nothing to test on
    if comm is None:
        train_loss, train_acc = net.evaluate(ds.X_train, ds.y_train, l2=args.l2)
        if has_test:
            _, test_acc = net.evaluate(ds.X_test, ds.y_test)
    else:  # each rank its shard of the rows, the sums reduced
        from bpnet.distributed import evaluate

        train_loss, train_acc = evaluate(comm, net, ds.X_train, ds.y_train, l2=args.l2)
        if has_test:
            _, test_acc = evaluate(comm, net, ds.X_test, ds.y_test)
    return train_loss, train_acc, test_acc


class _Commit:
    """At each epoch's end, after the checkpoint is written: the run folder's
    new run is valid, so an old run --overwrite set aside can go."""

    every_step = False

    def __init__(self, folder: Any) -> None:
        self.folder = folder

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        self.folder.commit()
