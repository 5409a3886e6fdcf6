"""A run folder (``bpnet-train --out D``) belongs to one run: a folder that
already holds a run is never written over by accident, and two runs never
write into the same folder at once.

The lock is an OS file lock (``fcntl.flock``) on ``D/.bpnet-train.lock``:
the kernel drops it when the process ends, however it ends (a SIGKILL
included), so a lock is never left behind stale. Where ``fcntl`` does not
exist (Windows) runs are not locked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".bpnet-train.lock"
# What a run leaves in its folder; any of the first three means a run is there.
RUN_FILES = ("checkpoint.npz", "model.npz", "history.json")
OUTPUTS = (
    "predictions.npz",
    "first_layer.npy",
    "history.png",
    "samples.png",
    "first_layer.png",
    "confusion.png",
)


class RunFolderBusy(OSError):
    """Another process is running in the folder."""


def run_files(folder: Path) -> list[str]:
    """The names of the files in ``folder`` that show a run was there."""
    return [name for name in RUN_FILES if (folder / name).exists()]


def refuse_existing_run(folder: Path) -> None:
    """A one-line error when ``folder`` holds a run: resuming it and
    ``--overwrite`` are the two ways on."""
    found = run_files(folder)
    if not found:
        return
    ways = "pass --overwrite to replace it, or pick another --out"
    if "checkpoint.npz" in found:
        ways = f"continue it with --resume {folder / 'checkpoint.npz'}, " + ways
    raise FileExistsError(
        f"--out: {folder} already holds a run ({', '.join(found)}); {ways}"
    )


def remove_run(folder: Path) -> None:
    """Delete the files an earlier run wrote into ``folder`` (``--overwrite``),
    so none of them is left beside the new run's."""
    for name in (*RUN_FILES, *OUTPUTS):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "a process that has not said its PID"


@contextlib.contextmanager
def lock_folders(folders: Iterable[Path]) -> Iterator[None]:
    """Hold the run lock of each folder until the block ends; ``RunFolderBusy``
    naming the holder's PID when another run has one of them."""
    with contextlib.ExitStack() as stack:
        for folder in sorted({Path(f).resolve() for f in folders}):
            stack.enter_context(_lock(folder))
        yield


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = folder / LOCK_NAME
    # No O_TRUNC: the PID written by a holder must stay readable until we hold it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusy(
                f"--out: {folder} is in use by another bpnet-train run "
                f"({_holder(path)}); wait for it to finish, or pick another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the lock


@contextlib.contextmanager
def claim(out_dir: Path, resume: str | None, overwrite: bool) -> Iterator[None]:
    """Hold ``out_dir`` (and the folder of the checkpoint ``resume`` continues)
    for one run: locked, and never another run's folder unless ``overwrite``
    says so, in which case that run's files go first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = [out_dir] + ([Path(resume).parent] if resume else [])
    with lock_folders(folders):
        continued = bool(resume) and (
            Path(resume).parent.resolve() == out_dir.resolve()
        )
        if overwrite and continued:
            raise ValueError(
                f"--overwrite: {out_dir} is the folder of the run that --resume "
                "continues; leave --overwrite out, or pick another --out"
            )
        if overwrite:
            remove_run(out_dir)
        elif not continued:
            refuse_existing_run(out_dir)
        yield
