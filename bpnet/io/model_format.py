"""The model file's layout: its constants, the names its arrays may have, and
``ModelFileError``, shared by the writer (``bpnet.io.modelfile``) and the
reader (``bpnet.io.model_read``).

Layout (format_version 1)::

    NAME.npy          one member per array, NumPy's .npy format, no objects
    __metadata__.npy  uint8 array of UTF-8 JSON: {"format": "bpnet-model",
                      "format_version": 1, "bpnet_version", "created",
                      "arrays": {NAME: {"shape": [...], "dtype": "float32"}}, ...}
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np

from bpnet._version import __version__

FORMAT = "bpnet-model"
FORMAT_VERSION = 1
METADATA = "__metadata__"
RESERVED_KEYS = ("format", "format_version", "bpnet_version", "created", "arrays")

MAX_BYTES = 2**31  # 2 GiB of file, and of uncompressed contents
MAX_ELEMENTS = 2**28  # 1 GiB of float32
MAX_MEMBERS = 10_000
MAX_METADATA_BYTES = 16 * 2**20
# check(metadata, {name: (shape, dtype)}) -> names to read, or None for all
Check = Callable[[dict, dict], "Collection[str] | None"]

_NAME = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")
_MAX_NAME = 200
_KINDS = "biuf"  # bool, signed and unsigned integers, floating point


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a model file, damaged, unsafe,
    written by a newer bpnet, or not matching what it describes.

    ``path`` holds the file's name (or None).
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"model file {str(path)!r}: {problem}", path)


def _bpnet_version() -> str:
    return __version__


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what}: array names must be str, got {name!r}")
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name) or name == METADATA:
        raise ValueError(
            f"{what}: array name {name!r} is not allowed; use letters, digits, "
            f"'_' and '-', in parts separated by '/', at most {_MAX_NAME} "
            f"characters, and not {METADATA!r}"
        )
    return name


def _count_nonfinite(arr: np.ndarray) -> int:
    if arr.dtype.kind != "f":
        return 0
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))
