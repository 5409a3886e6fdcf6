"""A run folder (``bpnet-train --out D``) belongs to one run: a folder that
already holds a run is never written over by accident, two runs never
write into the same folder at once, and ``--overwrite`` loses the old run
only once the new one has proved itself.

The lock is an OS file lock (``fcntl.flock``) on ``D/.bpnet-train.lock``:
the kernel drops it when the process ends, however it ends (a SIGKILL
included), so a lock is never left behind stale. Where ``fcntl`` does not
exist (Windows) runs are not locked. The lock file is opened without
following links (``O_NOFOLLOW``) and must be a plain file with no other
name, so a link or a hard link planted in its place is refused, never
truncated. A folder that is only read (the source of a ``--resume`` into
another ``--out``) gets no lock file: it is checked for a running run and
left as it was.

``--overwrite`` moves the old run's files into ``D/.bpnet-train.previous``
(a rename in the same folder) and deletes them only when the new run has
passed its checks and written its first checkpoint (``RunFolder.commit``);
a run that fails before that puts them back. A run killed before that
(SIGKILL, power loss) leaves them there, and the next ``bpnet-train`` into
``D`` puts them back before anything else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from bpnet.io.atomic import refuse_link

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".bpnet-train.lock"
# Where --overwrite keeps the old run until the new one has its first checkpoint,
# and where it goes, as one rename, once the new run has it (then deleted).
PREVIOUS_NAME = ".bpnet-train.previous"
DISCARDED_NAME = ".bpnet-train.discarded"
MOVING_NAME = ".bpnet-train.moving"  # PREVIOUS_NAME while its files move in
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
_OPEN = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN |= getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as the lock must not hang


class RunFolderBusy(OSError):
    """Another process is running in the folder."""


def run_files(folder: Path) -> list[str]:
    """The names of the files in ``folder`` that show a run was there."""
    return [name for name in RUN_FILES if os.path.lexists(folder / name)]


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


def real_checkpoint(resume: str | os.PathLike[str]) -> Path:
    """The checkpoint file ``resume`` names, with a link to it followed: a run
    goes on (and is locked) in the folder where the file really is."""
    path = Path(resume)
    return path.resolve() if path.is_symlink() else path


def make_folder(out_dir: Path) -> None:
    """Create ``--out`` (and its parents); one line naming --out when it is a
    file or cannot be created."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(
            f"--out: {out_dir} is a file, not a folder; --out names the folder "
            "the run's files go into: pick another --out"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(
            exc.errno, f"--out: cannot create the folder ({exc.strerror})", str(out_dir)
        ) from None


class RunFolder:
    """The folder a run holds; ``commit`` says the new run is valid (it has
    its first checkpoint), so an old run ``--overwrite`` set aside can go."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.previous: Path | None = None

    def set_aside(self) -> None:
        """Move the old run's files into ``PREVIOUS_NAME`` (same folder, so a
        rename: nothing is copied and nothing can be half-moved)."""
        names = [n for n in (*RUN_FILES, *OUTPUTS) if os.path.lexists(self.folder / n)]
        if not names:
            return
        # filled under another name and renamed when whole: a kill meanwhile
        # leaves MOVING_NAME, whose files _recover moves back and nothing more
        moving, previous = self.folder / MOVING_NAME, self.folder / PREVIOUS_NAME
        moving.mkdir()  # _recover removed any earlier one
        for name in names:
            os.replace(self.folder / name, moving / name)
        os.replace(moving, previous)
        self.previous = previous

    def commit(self) -> None:
        """The new run is valid: delete the old run set aside, if any."""
        previous, self.previous = self.previous, None
        if previous is not None:
            # one rename decides it: a kill while deleting leaves no half run
            discarded = self.folder / DISCARDED_NAME
            try:
                os.replace(previous, discarded)
            except OSError:  # an old one holds files not bpnet's: delete here
                discarded = previous
            _delete(discarded)

    def restore(self) -> None:
        """The new run failed before its first checkpoint: its files go and
        the old run's come back."""
        previous, self.previous = self.previous, None
        if previous is None:
            return
        _put_back(previous, self.folder)


def _delete(previous: Path) -> None:
    for name in (*RUN_FILES, *OUTPUTS):
        with contextlib.suppress(FileNotFoundError):
            (previous / name).unlink()
    with contextlib.suppress(OSError):  # something not ours in it: left there
        previous.rmdir()


def _put_back(previous: Path, folder: Path, replacing: bool = True) -> None:
    """The run in ``previous`` back into ``folder``; ``replacing``: in place
    of every file of a run that failed before its first checkpoint."""
    for name in (*RUN_FILES, *OUTPUTS):
        if os.path.lexists(previous / name):
            os.replace(previous / name, folder / name)
        elif replacing:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
    with contextlib.suppress(OSError):
        previous.rmdir()


def _recover(folder: Path) -> None:
    """What a killed ``--overwrite`` run left (we hold the lock, so it has
    ended): a ``PREVIOUS_NAME`` means it never committed, so the old run goes
    back in place of anything the new one wrote; a ``DISCARDED_NAME`` means
    it had committed, so the old run's rest is deleted; a ``MOVING_NAME``
    means it was killed while setting the old run aside, before it began:
    the files moved so far go back, and nothing else is touched."""
    for name in (DISCARDED_NAME, MOVING_NAME, PREVIOUS_NAME):
        path = folder / name
        if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
            raise ValueError(
                f"--out: {path} is not the folder bpnet-train keeps a replaced run "
                "in (a link or a file); remove it"
            )
    if os.path.lexists(folder / DISCARDED_NAME):
        _delete(folder / DISCARDED_NAME)
    moving, previous = folder / MOVING_NAME, folder / PREVIOUS_NAME
    if os.path.lexists(moving):
        _put_back(moving, folder, replacing=False)
    elif os.path.lexists(previous):
        _put_back(previous, folder)
    else:
        return
    print(
        f"bpnet-train: {folder} held the run that an interrupted --overwrite had "
        "set aside; it is back in place",
        file=sys.stderr,
    )


def recover(folder: Path) -> None:
    """Put back a run that a killed ``--overwrite`` into ``folder`` had set
    aside, under the folder's lock (before ``--resume`` reads its
    checkpoint); nothing to do, and no lock file made, when there is none."""
    if any(
        os.path.lexists(folder / name)
        for name in (PREVIOUS_NAME, DISCARDED_NAME, MOVING_NAME)
    ):
        with _lock(folder.resolve()):
            _recover(folder)


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "a process that has not said its PID"


def _open_lock(path: Path, flag: str) -> int:
    """The lock file, created if missing, never through a link."""
    try:
        # No O_TRUNC: the PID written by a holder must stay readable until we hold it.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(
                f"{flag}: {path} is a symbolic link; the run's lock file is never "
                "followed (it could point at any file); remove the link"
            ) from None
        raise type(exc)(
            exc.errno,
            f"{flag}: cannot open the run's lock file ({exc.strerror})",
            str(path),
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "has another name too (a hard link)" if st.st_nlink > 1 else "is not"
        raise ValueError(
            f"{flag}: {path} {what}{' a plain file' if what == 'is not' else ''}; "
            "the run's lock file is written, so it must be its own plain file; "
            "remove it"
        )
    return fd


@contextlib.contextmanager
def _lock(folder: Path, flag: str = "--out") -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = _open_lock(folder / LOCK_NAME, flag)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusy(
                f"{flag}: {folder} is in use by another bpnet-train run "
                f"({_holder(fd)}); wait for it to finish, or pick another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the lock


def check_not_running(folder: Path) -> None:
    """``RunFolderBusy`` when a run holds ``folder``'s lock; the folder is
    only read: no lock file is created, and a read-only one is fine."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | _OPEN)
    except OSError:  # none (no run ever held it), unreadable, or a link
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusy(
                f"--resume: {folder} is in use by a running bpnet-train run "
                f"({_holder(fd)}); wait for it to finish, or resume from a copy "
                "of its checkpoint"
            ) from None
        except OSError:  # a file system without locks: nothing to learn
            return
    finally:
        os.close(fd)


@contextlib.contextmanager
def claim(out_dir: Path, resume: str | None, overwrite: bool) -> Iterator[RunFolder]:
    """Hold ``out_dir`` for one run: locked, and never another run's folder
    unless ``overwrite`` says so, in which case that run's files are set
    aside until the new run calls ``commit`` (its first checkpoint) and put
    back if it fails before. The checkpoint ``resume`` continues is locked
    too when the run goes on in its folder (its real folder: a link to it
    is followed); a checkpoint in another folder is only read."""
    make_folder(out_dir)
    continued = False
    if resume:
        source = real_checkpoint(resume).resolve().parent
        continued = source == out_dir.resolve()
        if not continued:
            check_not_running(source)
    folder = RunFolder(out_dir)
    with _lock(out_dir.resolve()):
        if overwrite and continued:
            raise ValueError(
                f"--overwrite: {out_dir} is the folder of the run that --resume "
                "continues; leave --overwrite out, or pick another --out"
            )
        for name in (*RUN_FILES, *OUTPUTS):
            if os.path.islink(out_dir / name):
                refuse_link(out_dir / name, "--out")
        _recover(out_dir)
        if overwrite:
            folder.set_aside()
        elif not continued:
            refuse_existing_run(out_dir)
        try:
            yield folder
        except BaseException:
            folder.restore()
            raise
        folder.commit()
