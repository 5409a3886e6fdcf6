"""``bpnet-train --resume``: where the run's checkpoint is written, the check
that the data is the checkpoint's, and the copy of a checkpoint from another
folder into ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _carry_checkpoint(args: argparse.Namespace, comm: Any) -> None:
    """``--resume`` from another folder's checkpoint into ``--out``: the run
    continues from a copy in ``--out`` (atomically written), which is where
    its checkpoint goes from then on, so that folder holds a whole run that
    can be resumed, and the source run's folder is left as it was. Made
    once every check has passed, just before training: a run refused
    earlier leaves ``--out`` without a checkpoint, free for the next try."""
    source, target = Path(args.resume), _checkpoint_path(args)
    if target is None or source.resolve() == target.resolve():
        return
    if comm is None or comm.is_root:
        import shutil

        from bpnet.io.atomic import atomic_open

        with open(source, "rb") as src, atomic_open(target) as dst:
            shutil.copyfileobj(src, dst)
    if comm is not None:
        comm.barrier()  # every rank reads the copy rank 0 made


def _check_resumed_data(args: argparse.Namespace, training: dict, ds: Any) -> None:
    """Refuse to resume on other data than the checkpoint's (a file that
    was replaced or rewritten since, or a checkpoint written by
    ``fit(checkpoint=)`` on its own data), naming the flag, before the
    checkpoint is carried anywhere. A checkpoint without a fingerprint is
    left to ``fit``, which warns."""
    from bpnet.io.fingerprint import (
        DataMismatchError,
        check_same_data,
        data_fingerprint,
    )

    recorded = training.get("data_fingerprint")
    if recorded is None:
        return
    try:
        given = data_fingerprint(ds.X_train, ds.y_train)
        check_same_data(recorded, given, f"the checkpoint {args.resume!r}")
    except DataMismatchError as exc:
        source = "--data" if args.data else "--dataset"
        name = "--labels" if exc.which == "y" and args.labels else source
        raise DataMismatchError(f"{name}: {exc}", exc.which) from None


def _checkpoint_path(args: argparse.Namespace) -> Path | None:
    """Where the run's checkpoint is written: the ``--resume`` file itself
    when the run goes on in its folder (whatever the file's name), else
    ``--out``'s checkpoint.npz (``_carry_checkpoint`` copies a ``--resume``
    from another folder there first)."""
    from bpnet.cli.run_folder import real_checkpoint

    resume, out = args.resume, args.out
    if resume:
        real = real_checkpoint(resume)  # a link: the run goes on where the file is
        if not out or real.resolve().parent == Path(out).resolve():
            return real
    return Path(out) / "checkpoint.npz" if out else None
