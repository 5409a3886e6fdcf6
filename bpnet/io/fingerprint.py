"""What a checkpoint records of the data it was trained on, so that a resume
on other data is refused instead of training on silently.

A fingerprint is an array's shape, dtype and a BLAKE2b hash of its bytes:
all of them up to ``WHOLE_BYTES``, above that of rows at fixed positions
spread over the array (the first and the last among them), so that a large
memory-mapped file costs a read of ``WHOLE_BYTES`` at most. A device array
is sampled the same way and only those rows are copied to the host. For a
memory-mapped file the file's size and modification time are recorded too,
as information for the message: they are not compared.

Sampling is a cheap check, not a proof: two arrays that agree on every
sampled row have the same fingerprint.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any

import numpy as np

#: arrays up to this size are hashed whole; larger ones through rows sampled
#: at fixed positions adding up to about this much
WHOLE_BYTES = 16 * 2**20


class DataMismatchError(ValueError):
    """The data given to a resume is not the data the checkpoint was trained
    on; ``which`` names the array (``"X"`` or ``"y"``)."""

    def __init__(self, message: str, which: str) -> None:
        super().__init__(message)
        self.which = which


def _dtype_name(dtype: Any) -> str:
    # numpy.float32 -> float32; torch.float32 and array_api_strict's alike
    return str(dtype).rsplit(".", 1)[-1]


def _sample_rows(n: int, row_bytes: int) -> np.ndarray | None:
    """The rows hashed for ``n`` rows of ``row_bytes`` each; None for all."""
    if n * row_bytes <= WHOLE_BYTES:
        return None
    k = max(2, min(n, WHOLE_BYTES // max(row_bytes, 1)))
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def fingerprint(array: Any, backend: Any = None) -> dict[str, Any]:
    """The fingerprint of ``array`` (a NumPy array, a memory map, nested
    lists, or an array on ``backend``'s device), JSON-ready."""
    on_device = (
        backend is not None
        and not isinstance(array, np.ndarray)
        and backend.owns(array)
    )
    name = getattr(array, "filename", None) if isinstance(array, np.memmap) else None
    if not on_device:
        array = np.asarray(array)
    shape = [int(s) for s in array.shape]
    record: dict[str, Any] = {"shape": shape, "dtype": _dtype_name(array.dtype)}
    h = hashlib.blake2b(digest_size=16)
    if not shape:  # a 0-D array: its one value
        h.update(np.ascontiguousarray(backend.to_numpy(array) if on_device else array))
        record["blake2b"] = h.hexdigest()
        return record
    n = shape[0]
    itemsize = (
        np.dtype(_dtype_name(array.dtype)).itemsize if on_device else array.itemsize
    )
    rows = _sample_rows(n, itemsize * math.prod(shape[1:]))
    if rows is None:
        host = backend.to_numpy(array) if on_device else array
    elif on_device:
        host = backend.to_numpy(backend.take_rows(array, backend.asarray(rows)))
    else:
        host = array[rows, ...]
    h.update(np.ascontiguousarray(host).view(np.uint8))
    record["blake2b"] = h.hexdigest()
    record["sampled_rows"] = 0 if rows is None else int(rows.size)
    if name:
        try:
            st = os.stat(name)
            record["file"] = {"path": str(name), "size": st.st_size}
            record["file"]["mtime"] = st.st_mtime
        except OSError:
            pass
    return record


def data_fingerprint(X: Any, y: Any, backend: Any = None) -> dict[str, Any]:
    """The fingerprints of a fit's ``X`` and ``y``."""
    return {"X": fingerprint(X, backend), "y": fingerprint(y, backend)}


def describe(record: dict[str, Any]) -> str:
    """One fingerprint in words, for a message."""
    shape = "x".join(str(s) for s in record.get("shape", [])) or "scalar"
    text = f"{record.get('dtype')} of shape ({shape}), blake2b {record.get('blake2b')}"
    file = record.get("file")
    if isinstance(file, dict):
        text += f", from {file.get('path')} ({file.get('size')} bytes)"
    return text


def mismatch(recorded: dict[str, Any], given: dict[str, Any]) -> str | None:
    """The name of the first of X, y whose shape, dtype or hash differs
    between two ``data_fingerprint`` records, or None when both agree."""
    for which in ("X", "y"):
        a, b = recorded.get(which) or {}, given.get(which) or {}
        if any(a.get(k) != b.get(k) for k in ("shape", "dtype", "blake2b")):
            return which
    return None


def check_same_data(
    recorded: dict[str, Any], given: dict[str, Any], where: str
) -> None:
    """Refuse ``given`` data unless it is the ``recorded`` data; the error
    names X or y, what was recorded and what was given."""
    which = mismatch(recorded, given)
    if which is None:
        return
    raise DataMismatchError(
        f"{which}: {where} was trained on {which} = {describe(recorded[which])}; "
        f"got {describe(given[which])}. Resume on the data the run was trained "
        "on, or start a new run",
        which,
    )


def check_record(record: Any) -> tuple[str, Any, str] | None:
    """What is wrong with a checkpoint's stored fingerprint (untrusted
    input): (the field, its value, what was expected); None when it is well
    formed."""
    if not isinstance(record, dict):
        return "", record, "a JSON object with X and y"
    for which in ("X", "y"):
        one = record.get(which)
        if not isinstance(one, dict):
            return f".{which}", one, "a JSON object"
        shape, dtype, digest = one.get("shape"), one.get("dtype"), one.get("blake2b")
        if not (
            isinstance(shape, list)
            and len(shape) <= 32
            and all(type(s) is int and s >= 0 for s in shape)
        ):
            return f".{which}.shape", shape, "a list of sizes"
        if not (isinstance(dtype, str) and 0 < len(dtype) < 40):
            return f".{which}.dtype", dtype, "a dtype name"
        if not (
            isinstance(digest, str)
            and len(digest) == 32
            and all(c in "0123456789abcdef" for c in digest)
        ):
            return f".{which}.blake2b", digest, "32 hexadecimal digits"
    return None


class DataFileChangedError(OSError):
    """A memory-mapped data file that training reads changed under it."""


def mapped_file(original: Any, used: Any) -> str | None:
    """The file behind ``original`` when it is a NumPy memory map that
    training still reads through (``used`` is it, or shares its memory: a
    host backend kept the map instead of copying it), else None."""
    if not isinstance(original, np.memmap) or not original.filename:
        return None
    if used is original or (
        isinstance(used, np.ndarray) and np.may_share_memory(used, original)
    ):
        return str(original.filename)
    return None


def file_state(path: str) -> tuple[int, int, int, int]:
    """What ``os.stat`` says changes when a file is truncated, rewritten or
    replaced: (size, modification time in ns, inode, device)."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def file_change(path: str, before: tuple[int, int, int, int]) -> str | None:
    """How ``path`` changed since ``file_state`` gave ``before``, in words;
    None when it did not."""
    try:
        now = file_state(path)
    except OSError as exc:
        return f"it can no longer be read ({exc.strerror or exc})"
    if now == before:
        return None
    if now[2:] != before[2:]:
        return "it was replaced by another file"
    if now[0] != before[0]:
        return f"its size went from {before[0]} to {now[0]} bytes"
    return "it was rewritten (its modification time changed)"
