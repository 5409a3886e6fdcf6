"""The names model files are written to: ``.npz`` appended as ``numpy.savez``
does, and a clear error for a folder given where a file name belongs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bpnet.io.atomic import check_path


def model_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``.npz`` appended when it has another suffix (or none),
    as ``numpy.savez`` does.
    """
    path = check_path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def file_to_write(path: Any, name: str, example: str) -> Path:
    """``path`` as the name of a file to write: a clear error for a folder
    (one that exists, a name ending in a separator, ``.`` or ``..``), which
    would otherwise become a file beside it named after it."""
    checked = check_path(path, name)
    raw = os.fspath(path)  # as given: Path("sub/") drops the separator
    if not raw:
        raise ValueError(f"{name}: expected a file name, e.g. {example!r}; got ''")
    if (
        raw.endswith(("/", os.sep))
        or checked.name in ("", ".", "..")
        or checked.is_dir()
        or model_path(checked).is_dir()
    ):
        raise ValueError(
            f"{name}: {raw!r} is a folder; expected a file name, e.g. "
            f"{name}={os.path.join(raw, example)!r}"
        )
    return checked
