"""A ``--distributed`` job of ``bpnet-train``: every rank runs rank 0's run, on
rank 0's data, and an error on one rank ends them all."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bpnet.cli.train_args import flag

# Flags that change only what this process shows, not the run: ranks may differ.
_PER_RANK_FLAGS = frozenset({"report", "json", "progress", "quiet", "debug"})


_PATH_FLAGS = ("data", "labels", "data_dir", "out", "resume")


def _check_ranks_agree(comm: Any, args: argparse.Namespace) -> None:
    """Every rank of a --distributed job runs rank 0's run: a rank started
    with another flag ends the job before any data is read, naming the rank
    and the flag (paths compared as absolute paths)."""
    from bpnet.distributed import check_ranks_agree

    settings = {}
    for key, value in sorted(vars(args).items()):
        if key in _PER_RANK_FLAGS or key == "explicit":
            continue
        if key in _PATH_FLAGS and value:
            value = str(Path(value).absolute())
        settings[flag(key)] = value
    check_ranks_agree(comm, settings, "flags")


def _check_ranks_data(comm: Any, args: argparse.Namespace, ds: Any) -> None:
    """The data every rank loaded is rank 0's (the same file name may hold
    other data on another node): compared by fingerprint."""
    from bpnet.distributed import check_ranks_agree
    from bpnet.io.fingerprint import data_fingerprint

    source = "--data" if args.data else "--dataset"
    train = data_fingerprint(ds.X_train, ds.y_train)
    test = data_fingerprint(ds.X_test, ds.y_test)
    settings = {
        f"{source}'s training rows": train["X"],
        f"{'--labels' if args.labels else source}'s training labels": train["y"],
        f"{source}'s test rows": test["X"],
        f"{'--labels' if args.labels else source}'s test labels": test["y"],
    }
    check_ranks_agree(comm, settings, "data")


# The communicator of a --distributed run, so an error can end the whole job.
_RUNNING: dict[str, Any] = {}


def _end_other_ranks(code: int) -> None:
    """After an error on this rank of a --distributed job, end every rank
    rather than leave the others waiting in a reduction."""
    comm = _RUNNING.pop("comm", None)
    if comm is not None and comm.size > 1:
        comm.abort(code)
