"""Atomic file writes: a temporary file in the target's directory, flushed and
fsynced, then ``os.replace``. A crash leaves either the old file or the new
one, never half of either. A temporary file is removed on any error; one a
killed process left behind is removed by the next write into that folder.

Only files bpnet can prove are its own are ever removed: a temporary file is
named ``.NAME.bpnet-<12 random hex><8 hex tag>.tmp``, where the tag is a hash
of NAME and the random part, so a name that merely looks alike (a user's
``.notes.0123456789ab.tmp``) fails the tag; it must also be a regular file of
this user that no live process holds locked (a writer locks its temporary
file while it writes). A write never goes through or over a symbolic link:
the temporary file is created with ``O_EXCL | O_NOFOLLOW``, and a target that
is a link (or anything but a regular file) is refused by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: leftovers are not collected
    fcntl = None  # type: ignore[assignment]

_TMP = re.compile(
    r"\.(?P<name>.+)\.bpnet-(?P<token>[0-9a-f]{12})(?P<tag>[0-9a-f]{8})\.tmp"
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not hang the open


def _tag(name: str, token: str) -> str:
    """The 8 hex digits that prove ``.NAME.bpnet-<token><tag>.tmp`` is bpnet's."""
    digest = hashlib.blake2b(
        f"{name}\0{token}".encode("utf-8", "surrogateescape"),
        digest_size=4,
        person=b"bpnet.atomic",
    )
    return digest.hexdigest()


def temporary_name(name: str) -> str:
    """A fresh name for the temporary file of a write to ``name``."""
    token = secrets.token_hex(6)
    return f".{name}.bpnet-{token}{_tag(name, token)}.tmp"


def is_own_temporary(name: str) -> bool:
    """Whether ``name`` is one ``temporary_name`` made (its tag checks out)."""
    match = _TMP.fullmatch(name)
    return match is not None and match["tag"] == _tag(match["name"], match["token"])


def refuse_link(path: Path, what: str = "path") -> None:
    """A clear error when ``path`` exists and is not a regular file (a symbolic
    link above all): bpnet writes neither through nor over one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        raise ValueError(
            f"{what}: {str(path)!r} is a symbolic link (to {os.readlink(path)!r}); "
            "bpnet does not write through or over links; remove the link, or "
            "write to the file it points to"
        )
    raise ValueError(
        f"{what}: {str(path)!r} exists and is not a regular file; bpnet writes "
        "only new files or in place of regular files; remove it or pick "
        "another name"
    )


def _naming(exc: BaseException, path: Path) -> BaseException:
    """``exc`` naming ``path`` when it is an OS error that names no file, or
    only the temporary one (a full disk on ``write`` or ``fsync`` says just
    'No space left on device')."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return exc
    if exc.filename is not None and not is_own_temporary(Path(exc.filename).name):
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def check_path(path: str | os.PathLike[str], name: str = "path") -> Path:
    """``path`` as a ``Path``; a clear TypeError for anything else."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{name}: expected a file name (str or os.PathLike), "
            f"got {type(path).__name__}"
        )
    return Path(path)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces ``path`` when the block exits cleanly.

    On any exception the temporary file is removed and ``path`` is untouched.
    The new file gets the mode of the file it replaces, or the usual
    ``0o666 & ~umask`` for a new file.
    """
    path = check_path(path)
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(
            f"path: directory {str(parent)!r} does not exist; create it first"
        )
    refuse_link(path)
    remove_leftovers(parent)
    try:
        tmp, fd = _create_temporary(parent, path.name)
    except OSError as exc:
        raise _naming(exc, path) from exc
    held = os.dup(fd)  # keeps the lock on the temporary file until it is renamed
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # a link planted meanwhile is replaced, never followed; said all the same
        refuse_link(path)
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                os.chmod(tmp, st.st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        named = _naming(exc, path)
        if named is exc:
            raise
        raise named from exc
    finally:
        os.close(held)
    _fsync_directory(parent)


def _create_temporary(parent: Path, name: str) -> tuple[Path, int]:
    """A new ``temporary_name(name)`` in ``parent``, opened and locked."""
    # os.open with O_EXCL (and O_NOFOLLOW) refuses to follow a planted
    # symlink, and mode 0o666 lets the kernel apply the umask as open() does.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = parent / temporary_name(name)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:  # pragma: no cover - Windows
            return tmp, fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return tmp, fd
        # another writer's cleanup removed it between open and lock: again
        os.close(fd)  # pragma: no cover - a window of microseconds
    raise FileExistsError(  # pragma: no cover - 100 collisions of 48 random bits
        f"path: could not create a temporary file in {parent}"
    )


def remove_leftovers(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of interrupted atomic writes in ``folder``:
    those ``temporary_name`` made (the tag in the name checks out), regular
    files of this user that no process holds locked. Nothing else is touched,
    whatever its name. Returns the files removed."""
    if fcntl is None:  # pragma: no cover - Windows
        return []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not is_own_temporary(entry.name):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except OSError:
            continue
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer holds it
            os.close(fd)
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where unsupported."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace; its directory must exist.
    data : bytes-like

    Returns
    -------
    Path
        ``path``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected bytes, got {type(data).__name__}")
    path = check_path(path)
    with atomic_open(path) as fh:
        fh.write(data)
    return path


def atomic_write_text(
    path: str | os.PathLike[str], text: str, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding``.

    Newlines are written as given (no platform translation), so a file is
    byte-identical everywhere. Returns ``path`` as a ``Path``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))
