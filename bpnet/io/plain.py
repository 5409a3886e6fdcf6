"""Plain ``.npy`` and ``.npz`` files (a run folder's ``predictions.npz`` and
``first_layer.npy``) read without pickle and within a size limit: every
array's header is checked against the bytes stored for it, and the total
against ``max_bytes``, before any array is allocated. A file that claims
gigabytes costs nothing to refuse."""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

MAX_PLAIN_BYTES = 2**29  # 512 MiB: far above any run folder's arrays


def read_npy_header(
    fh: IO[bytes], name: str = ""
) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) from the ``.npy`` header at ``fh``'s
    position, reading nothing past it; ``name`` prefixes the error."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        prefix = f"{name}: " if name else ""
        raise ValueError(f"{prefix}unsupported .npy format version {version}")
    return tuple(shape), dtype, fh.tell()


def npy_header(fh: IO[bytes], name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of the ``.npy`` data in ``fh``; a
    ``ValueError`` naming ``name`` for object arrays and damaged headers."""
    shape, dtype, header_len = read_npy_header(fh, name)
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (pickle); refused")
    return shape, dtype, header_len


def _check_size(
    name: str, shape: tuple, dtype: np.dtype, header: int, stored: int
) -> int:
    need = math.prod(shape) * dtype.itemsize
    if header + need != stored:
        raise ValueError(
            f"{name}: its header says shape {shape} of {dtype} ({need} bytes), "
            f"which does not fit the {stored - header} bytes stored (truncated "
            "or crafted)"
        )
    return need


def _over(path: Path, total: int, max_bytes: int) -> ValueError:
    return ValueError(
        f"{path}: its arrays take {total} bytes, over the {max_bytes} this reader "
        "accepts; not a file bpnet wrote"
    )


def read_npy(path: str | os.PathLike[str], max_bytes: int = MAX_PLAIN_BYTES) -> Any:
    """``numpy.load(path, allow_pickle=False)`` for a ``.npy``, bounded."""
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            shape, dtype, header = npy_header(fh, str(path))
        except (ValueError, EOFError, SyntaxError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        size = os.fstat(fh.fileno()).st_size
        need = _check_size(str(path), shape, dtype, header, size)
        if need > max_bytes:
            raise _over(path, need, max_bytes)
        fh.seek(0)
        return np.lib.format.read_array(fh, allow_pickle=False)


def read_npz(
    path: str | os.PathLike[str], max_bytes: int = MAX_PLAIN_BYTES
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, by name, bounded; a ``ValueError`` naming
    the file for anything that is not plain arrays within ``max_bytes``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_members(zf, max_bytes)
    except _TooBig as exc:
        raise _over(path, exc.args[0], max_bytes) from None
    except (zipfile.BadZipFile, EOFError, SyntaxError, OSError, ValueError) as exc:
        problem = f"not a readable .npz of plain arrays ({exc})"
        raise ValueError(f"{path}: {problem}") from None


class _TooBig(Exception):
    pass


def _read_members(zf: zipfile.ZipFile, max_bytes: int) -> dict[str, np.ndarray]:
    infos, total = zf.infolist(), 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ValueError(f"unexpected member {info.filename[:80]!r}")
        total += info.file_size
        if total > max_bytes:
            raise _TooBig(total)
        with zf.open(info) as fh:
            shape, dtype, header = npy_header(fh, info.filename)
        _check_size(info.filename, shape, dtype, header, info.file_size)
    arrays = {}
    for info in infos:
        with zf.open(info) as fh:
            arrays[info.filename[:-4]] = np.lib.format.read_array(
                fh, allow_pickle=False
            )
    return arrays


def check_npz_budget(path: Path, flag: str, budget: int | None = None) -> None:
    """Refuse an ``.npz`` whose members would not fit ``budget`` bytes
    (default: ``memory_budget()``) once read, or whose headers do not fit
    the bytes stored, from the headers alone: a deflate bomb or a header
    claiming terabytes costs nothing. A ``ValueError`` naming ``flag``."""
    from bpnet.io.budget import memory_budget, over_budget

    budget = memory_budget() if budget is None else budget
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                with zf.open(info) as fh:
                    shape, dtype, header = npy_header(fh, info.filename)
                total += _check_size(
                    info.filename, shape, dtype, header, info.file_size
                )
    except (zipfile.BadZipFile, EOFError, SyntaxError, OSError) as exc:
        raise ValueError(f"{flag}: {path} is not a readable .npz ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{flag}: {path}: {exc}") from None
    if total > budget:
        what = f"{flag}: {path}, read whole (a .npy would be memory-mapped),"
        raise ValueError(over_budget(what, total, budget, ""))


def load_npy(
    path: str | os.PathLike[str],
    flag: str,
    what: str,
    mmap_mode: str | None = None,
    archive: bool | None = None,
) -> Any:
    """``numpy.load`` of a file a command-line flag names (no pickles): a
    missing, truncated or unreadable file is an error that names the flag, the
    file and what was expected. An ``.npz`` comes back open (a context
    manager); read its members with ``npz_member``. ``archive``: whether an
    ``.npz`` is what the flag takes (by default, what the file's name says)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag}: no such file: {path}")
    try:
        if path.suffix == ".npz":  # opened here first: NumPy leaks the file of
            with zipfile.ZipFile(path):  # an archive it cannot read
                pass
        loaded = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        msg = f"{flag}: expected {what}; {path} is not one ({exc})"
        raise ValueError(msg) from None
    zipped = not isinstance(loaded, np.ndarray)  # an NpzFile, whatever its name
    if zipped != (path.suffix == ".npz" if archive is None else archive):
        if zipped:
            loaded.close()
        held = "an .npz archive" if zipped else "one .npy array"
        raise ValueError(f"{flag}: expected {what}; {path} holds {held}")
    return loaded


def npz_member(z: Any, key: str, flag: str, path: Any) -> np.ndarray:
    """``z[key]`` of an open ``.npz``, with ``load_npy``'s kind of error."""
    try:
        return z[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{flag}: {path}'s array {key} cannot be read ({exc})"
        ) from None
