"""``bpnet-train``: train a network from the command line.

With no arguments it trains a 64-128-10 ReLU network on scikit-learn's
bundled 8x8 digits and prints its test accuracy. ``--device cuda`` runs the
same code on a GPU; ``--json`` makes the last line of stdout one JSON object.

The data, network and optimizer are built from the flags in ``train_build``;
what a ``--distributed`` job's ranks must share is checked in ``train_ranks``;
a ``--resume``'s checkpoint is found and checked in ``train_resume``;
the training itself is in ``train_fit``, the report and the run's files
in ``train_outputs``; here the run is set up, its steps called in order,
and its errors turned into one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
    conv_block,  # noqa: F401
)
from bpnet.cli.train_fit import (  # TEST_NAMES: also imported from here
    TEST_NAMES,  # noqa: F401
    _evaluate,
    _train_epochs,
    _train_full_batch,
)
from bpnet.cli.train_outputs import _print_report, _write_run
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
    ds = _load_data(args)
    _say_when_the_map_shrinks(args, ds)
    if comm is not None:
        _check_ranks_data(comm, args, ds)
    resume_total = _resume(args, explicit, saved, ds, out, comm)
    net = _network(args, saved, ds, backend)
    say = _silent if args.quiet else out
    _say_setup(say, backend, comm, ds, net)
    t0 = time.perf_counter()
    full_batch = full_batch_method(args.optimizer) is not None
    if full_batch:
        history, epochs_run = _train_full_batch(net, ds, args, say, comm)
    else:
        history, epochs_run = _train_epochs(
            net, ds, args, saved, resume_total, say, comm, folder
        )
    seconds = time.perf_counter() - t0
    scores = _evaluate(net, ds, args, comm)
    summary = _summary(args, backend, ds, net, comm, epochs_run, seconds, scores)
    _say_scores(summary, out)
    if comm is not None and not comm.is_root:
        return summary
    has_test = ds.X_test.shape[0] > 0
    y_pred = backend.to_numpy(net.predict(ds.X_test)) if has_test else None
    _print_report(args, ds, y_pred, out)
    if args.out:
        _write_outputs(args, net, ds, history, summary, y_pred, out, folder)
    return summary


def _resume(
    args: argparse.Namespace,
    explicit: frozenset[str],
    saved: Any,
    ds: Any,
    out: Any,
    comm: Any,
) -> int | None:
    """The epochs a resumed run ends at (None for a new run), checked before
    any output: asking for too few is an error. The checkpoint is then
    carried into --out."""
    from bpnet.cli import train_args

    if saved is None:
        return None
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
    return resume_total


def _network(args: argparse.Namespace, saved: Any, ds: Any, backend: Any) -> Any:
    """A new network from the flags, or the checkpoint's (fit restores its
    weights)."""
    from bpnet.nn.model import Sequential

    if saved is None:
        return _build_net(args, ds.X_train.shape[1], len(ds.classes))
    return Sequential.from_config(saved[1], device=backend, dtype=args.dtype)


def _say_setup(say: Any, backend: Any, comm: Any, ds: Any, net: Any) -> None:
    """The lines before training: device, ranks, dataset and network."""
    say(f"device: {backend.describe()}")
    if comm is not None:
        say(f"distributed: {comm.size} ranks ({comm.kind}), global batch split")
    has_test = ds.X_test.shape[0] > 0
    tested = f"{ds.X_test.shape[0]} test" if has_test else "no test split"
    say(
        f"dataset: {ds.name}: {ds.X_train.shape[0]} train, {tested}, "
        f"{ds.X_train.shape[1]} features, {len(ds.classes)} classes"
    )
    say(repr(net))


def _summary(
    args: argparse.Namespace,
    backend: Any,
    ds: Any,
    net: Any,
    comm: Any,
    epochs_run: int,
    seconds: float,
    scores: tuple[float, float, float | None],
) -> dict:
    """The run's summary (--json's line, history.json's summary); ``scores``
    are ``_evaluate``'s."""
    train_loss, train_acc, test_acc = scores
    full_batch = full_batch_method(args.optimizer) is not None
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
    if test_acc is None:  # --test-size 0: trained on every row
        summary["test_size"] = 0.0
    return summary


def _say_scores(summary: dict, out: Any) -> None:
    """The line of the scores after training."""
    if summary["test_accuracy"] is not None:
        tested = f"test accuracy: {summary['test_accuracy']:.4f}"
    else:
        tested = "test accuracy: none (--test-size 0: trained on every row)"
    out(
        f"{tested} (train {summary['train_accuracy']:.4f} and loss "
        f"{summary['final_loss']:.4f} after training, "
        f"{summary['seconds']:.2f} s on {summary['device']})"
    )


def _write_outputs(
    args: argparse.Namespace,
    net: Any,
    ds: Any,
    history: dict,
    summary: dict,
    y_pred: Any,
    out: Any,
    folder: Any,
) -> None:
    """Rank 0 writes the run's files to --out (through this module's
    ``_write_run``) and says where; ``summary`` gets their names."""
    from bpnet.cli import train_args

    if folder is not None:  # no checkpoint (full batch, nothing to train)
        folder.commit()
    record = train_args.data_record(args)
    summary["files"] = _write_run(args.out, net, ds, history, summary, y_pred, record)
    names = ", ".join(Path(f).name for f in summary["files"])
    ck = _checkpoint_path(args)
    full_batch = full_batch_method(args.optimizer) is not None
    kept = "" if full_batch or ck is None else f"; its checkpoint is {ck}"
    out(f"wrote {names} to {Path(args.out)}{kept}")


def _silent(line: str) -> None:
    pass


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
