"""Atomic file writes: a temporary file in the target's directory, flushed and
fsynced, then ``os.replace``. A crash leaves either the old file or the new
one, never half of either. A temporary file is removed on any error; one a
killed process left behind (``.NAME.<hex>.tmp``) is removed by the next write
into that folder. A writer holds an OS lock on its temporary file while it
writes, so only files that no live process is writing are removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: leftovers are not collected
    fcntl = None  # type: ignore[assignment]

_TMP = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")


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
    remove_leftovers(parent)
    tmp, fd = _create_temporary(parent, path.name)
    held = os.dup(fd)  # keeps the lock on the temporary file until it is renamed
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            if path.is_file():
                os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(held)
    _fsync_directory(parent)


def _create_temporary(parent: Path, name: str) -> tuple[Path, int]:
    """A new ``.NAME.<hex>.tmp`` in ``parent``, opened and locked."""
    # os.open with O_EXCL refuses to follow a planted symlink, and mode 0o666
    # lets the kernel apply the umask as it does for open().
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = parent / f".{name}.{secrets.token_hex(6)}.tmp"
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
    those named ``.NAME.<12 hex digits>.tmp`` that no process holds locked.
    Returns the files removed."""
    if fcntl is None:  # pragma: no cover - Windows
        return []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not _TMP.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
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
