"""``bpnet-train``: train a network from the command line.

With no arguments it trains a 64-128-10 ReLU network on scikit-learn's
bundled 8x8 digits and prints its test accuracy. ``--device cuda`` runs the
same code on a GPU; ``--json`` makes the last line of stdout one JSON object.

The data, network and optimizer are built from the flags in ``train_build``;
what a ``--distributed`` job's ranks must share is checked in ``train_ranks``;
a ``--resume``'s checkpoint is found and checked in ``train_resume``;
here the run is trained, resumed and written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from bpnet.cli.parsing import build_parser, check_args, missing_extra, parse_args
from bpnet.cli.train_args import full_batch_method
from bpnet.cli.train_build import (  # conv_block: also imported from here
    _build_net,
    _load_data,
    _optimizer,
    conv_block,  # noqa: F401
)
from bpnet.cli.train_ranks import (
    _RUNNING,
    _check_ranks_agree,
    _check_ranks_data,
    _end_other_ranks,
)
from bpnet.cli.train_resume import (
    _carry_checkpoint,
    _check_resumed_data,
    _checkpoint_path,
)


def run(args: argparse.Namespace, out: Any = print) -> dict:
    """Train as ``args`` say; return the summary dict."""
    import backends
    from bpnet.cli import train_args
    from bpnet.cli.run_folder import claim, make_folder, real_checkpoint, recover

    explicit = getattr(args, "explicit", None)
    if explicit is None:  # a Namespace built by hand: what differs from defaults
        defaults = vars(build_parser().parse_args([]))
        explicit = frozenset(k for k, v in vars(args).items() if defaults.get(k) != v)
    saved = None
    if args.resume:
        if not args.distributed:  # one process: a killed --overwrite undone first
            recover(real_checkpoint(args.resume).parent)
        saved = train_args.apply_checkpoint(args, explicit)
    if args.conv and not args.resume and "hidden" not in explicit:
        args.hidden = [100]  # SimpleConvNet's hidden Dense layer
    check_args(args)
    train_args.check_flags_apply(args, explicit)
    comm = None
    if args.distributed:
        from bpnet.distributed import init

        comm = init(args.device)  # "cuda": one GPU per rank, from the local rank
        _RUNNING["comm"] = comm
        _check_ranks_agree(comm, args)
        if not comm.is_root:  # one voice: rank 0 prints and writes the files
            out = _silent
    device = args.device if comm is None else comm.device
    backend = backends.get_backend(device)  # fails early, before loading data
    with contextlib.ExitStack() as stack:
        # held to the end: one run per folder at a time (rank 0 writes it)
        folder = None
        if args.out and (comm is None or comm.is_root):
            folder = stack.enter_context(
                claim(Path(args.out), args.resume, args.overwrite)
            )
        elif args.out:  # fit checks the checkpoint's folder on every rank
            make_folder(Path(args.out))
        return _run(args, explicit, saved, backend, out, comm, folder)


def _say_when_the_map_shrinks(args: argparse.Namespace, ds: Any) -> None:
    """--data X.npy is read through a memory map: a file truncated while a
    batch is read ends the process with SIGBUS, which Python cannot catch;
    it then prints this line (exit 135) instead of ``Bus error``. A change
    between batches is found at the epoch's end (``fit``'s file check)."""
    import numpy as np

    if not isinstance(ds.X_train, np.memmap):
        return
    from bpnet.cli.bus_error import say_on_bus_error

    say_on_bus_error(
        f"bpnet-train: error: --data: the file {args.data} shrank while training "
        "read it through its memory map (SIGBUS), and the run ended at once; its "
        "last checkpoint is whole: restore the file, then --resume"
    )


def _run(
    args: argparse.Namespace,
    explicit: frozenset[str],
    saved: Any,
    backend: Any,
    out: Any,
    comm: Any = None,
    folder: Any = None,
) -> dict:
    """The run itself; ``folder`` (a ``RunFolder``) hears when the run has
    written its first checkpoint, so an old run --overwrite set aside can go."""
    from bpnet.cli import train_args
    from bpnet.nn.model import Sequential

    ds = _load_data(args)
    _say_when_the_map_shrinks(args, ds)
    if comm is not None:
        _check_ranks_data(comm, args, ds)
    resume_total = None  # the epochs a resumed run ends at
    if saved is not None:  # before any output: asking for too few is an error
        _check_resumed_data(args, saved[0], ds)
        resume_total = train_args.resume_epochs(
            args, explicit, saved[0], ds.X_train.shape[0]
        )
        if resume_total <= int(saved[0]["epoch"]):  # a run killed while finishing
            out(
                f"the run in {Path(args.resume).parent} is complete ({resume_total} "
                "epochs): writing its outputs from the checkpoint"
            )
        _carry_checkpoint(args, comm)
    n_classes = len(ds.classes)
    if saved is None:
        net = _build_net(args, ds.X_train.shape[1], n_classes)
    else:  # the checkpoint's network; fit restores its weights
        net = Sequential.from_config(saved[1], device=backend, dtype=args.dtype)
    say = _silent if args.quiet else out
    say(f"device: {backend.describe()}")
    if comm is not None:
        say(f"distributed: {comm.size} ranks ({comm.kind}), global batch split")
    has_test = ds.X_test.shape[0] > 0
    tested = f"{ds.X_test.shape[0]} test" if has_test else "no test split"
    say(
        f"dataset: {ds.name}: {ds.X_train.shape[0]} train, {tested}, "
        f"{ds.X_train.shape[1]} features, {n_classes} classes"
    )
    say(repr(net))
    t0 = time.perf_counter()
    full_batch = full_batch_method(args.optimizer) is not None
    if full_batch:
        history, epochs_run = _train_full_batch(net, ds, args, say, comm)
    else:
        history, epochs_run = _train_epochs(
            net, ds, args, saved, resume_total, say, comm, folder
        )
    seconds = time.perf_counter() - t0
    train_loss, train_acc, test_acc = _evaluate(net, ds, args, comm)
    summary = {
        "device": backend.name,
        "device_description": backend.describe(),
        "dataset": ds.name,
        "hidden": args.hidden,
        "conv": args.conv,
        "activation": args.activation,
        "optimizer": args.optimizer,
        "epochs": epochs_run,
        "batch_size": None if full_batch else args.batch_size,
        "n_parameters": net.n_parameters,
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "final_loss": train_loss,
        "seconds": seconds,
        "seconds_per_epoch": seconds / max(epochs_run, 1),
        "ranks": 1 if comm is None else comm.size,
    }
    if comm is not None:
        summary["rank"] = comm.rank
    if has_test:
        tested = f"test accuracy: {test_acc:.4f}"
    else:
        summary["test_size"] = 0.0
        tested = "test accuracy: none (--test-size 0: trained on every row)"
    out(
        f"{tested} (train {train_acc:.4f} and loss "
        f"{train_loss:.4f} after training, "
        f"{seconds:.2f} s on {backend.name})"
    )
    if comm is not None and not comm.is_root:
        return summary
    y_pred = backend.to_numpy(net.predict(ds.X_test)) if has_test else None
    if args.report and not has_test:
        out("classification report: none (--test-size 0: no test split)")
    elif args.report:
        from sklearn.metrics import classification_report

        out(
            classification_report(
                ds.y_test, y_pred, target_names=[str(c) for c in ds.classes], digits=4
            )
        )
    if args.out:
        if folder is not None:  # no checkpoint (full batch, nothing to train)
            folder.commit()
        record = train_args.data_record(args)
        summary["files"] = _write_run(
            args.out, net, ds, history, summary, y_pred, record
        )
        names = ", ".join(Path(f).name for f in summary["files"])
        ck = _checkpoint_path(args)
        kept = "" if full_batch or ck is None else f"; its checkpoint is {ck}"
        out(f"wrote {names} to {Path(args.out)}{kept}")
    return summary


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


def _silent(line: str) -> None:
    pass


class _Commit:
    """At each epoch's end, after the checkpoint is written: the run folder's
    new run is valid, so an old run --overwrite set aside can go."""

    every_step = False

    def __init__(self, folder: Any) -> None:
        self.folder = folder

    def on_epoch_end(self, epoch: int, logs: dict, net: Any) -> None:
        self.folder.commit()


# bpnet.fit's val_* columns, when the data watched is the test split
TEST_NAMES = {"val_loss": "test_loss", "val_accuracy": "test_accuracy"}


def _write_run(
    out_dir: str,
    net: Any,
    ds: Any,
    history: dict,
    summary: dict,
    y_pred: Any,
    data_record: dict,
) -> list[str]:
    import numpy as np

    from bpnet import io
    from bpnet.io.atomic import atomic_open

    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    classes = [str(c) for c in ds.classes]
    files = [io.save(net, path / "model.npz", classes=classes, data=data_record)]
    record = dict(
        history,
        dataset=ds.name,
        image_shape=list(ds.image_shape or []),
        image_order=ds.image_order,  # ex4's .mat images are column-major
        class_names=[str(c) for c in ds.classes],
        summary=summary,
    )
    io.atomic_write_text(path / "history.json", json.dumps(record, indent=1))
    files.append(path / "history.json")
    if y_pred is not None:  # None: no test split to predict
        n = min(25, ds.X_test.shape[0])
        with atomic_open(path / "predictions.npz") as fh:
            np.savez(fh, X_sample=ds.X_test[:n], y_true=ds.y_test, y_pred=y_pred)
        files.append(path / "predictions.npz")
    else:  # a predictions.npz left by an earlier run in this folder is not ours
        (path / "predictions.npz").unlink(missing_ok=True)
    with atomic_open(path / "first_layer.npy") as fh:
        np.save(fh, net.backend.to_numpy(net.parameters()[0]))
    files.append(path / "first_layer.npy")
    try:
        from bpnet.cli.plot import plot_run

        files += plot_run(path)
    except ImportError as exc:  # matplotlib is an optional extra
        print(f"bpnet-train: plots skipped: {exc}", file=sys.stderr)
    return [str(f) for f in files]


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``bpnet-train``; returns the exit status."""
    args = parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            summary = run(args)
    except KeyboardInterrupt:
        print("bpnet-train: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback, unless --debug
        comm = _RUNNING.get("comm")
        if _is_rank_mismatch(exc) and comm is not None and not args.debug:
            # every rank raised the same error: rank 0 says it, all exit 2
            if comm.is_root:
                print(f"bpnet-train: error: {exc}", file=sys.stderr)
            return 2
        missing = missing_extra(exc)
        if args.debug or not (missing or _is_user_error(exc)):
            raise
        print(f"bpnet-train: error: {missing or exc}", file=sys.stderr)
        _end_other_ranks(2)
        return 2
    if args.json and not summary.get("rank"):
        print(json.dumps(summary))
    return 0


def _one_line_warnings(show: Any) -> Any:
    """``warnings.showwarning`` that prints a training warning as one line,
    like the errors, and hands every other warning to ``show``."""
    from bpnet.train.history import TrainingWarning

    def show_warning(message: Any, category: type, *args: Any, **kw: Any) -> None:
        if issubclass(category, TrainingWarning):
            print(f"bpnet-train: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kw)

    return show_warning


def _is_rank_mismatch(exc: BaseException) -> bool:
    from bpnet.distributed.agree import RankMismatchError

    return isinstance(exc, RankMismatchError)


def _is_user_error(exc: BaseException) -> bool:
    import backends
    from bpnet.train.history import DivergenceError

    return isinstance(
        exc,
        (
            ValueError,
            TypeError,
            OSError,
            backends.BackendUnavailableError,
            DivergenceError,
        ),
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())
