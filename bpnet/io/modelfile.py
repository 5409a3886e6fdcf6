"""The model file format: a NumPy ``.npz`` archive of parameter arrays plus a
JSON metadata document, readable without pickle.

Writing one is here (``write_model_file``); the layout, its constants and
``ModelFileError`` are in ``bpnet.io.model_format``, reading and checking a
file (``read_model_file``) in ``bpnet.io.model_read``; both are imported from
here too.

The memory budget of a load is in ``bpnet.io.budget``, the names files are
written to in ``bpnet.io.paths``.
"""

from __future__ import annotations

import datetime
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.io.atomic import atomic_open
from bpnet.io.budget import (  # noqa: F401 (also imported from here)
    LIBRARY_WAY,
    MAX_MEMORY,
    MAX_MEMORY_ENV,
    human_bytes,
    memory_budget,
    over_budget,
    parse_bytes,
)
from bpnet.io.model_format import (  # noqa: F401 (as above)
    _KINDS,
    FORMAT,
    FORMAT_VERSION,
    MAX_BYTES,
    MAX_ELEMENTS,
    MAX_MEMBERS,
    MAX_METADATA_BYTES,
    METADATA,
    RESERVED_KEYS,
    Check,
    ModelFileError,
    _bpnet_version,
    _check_name,
    _count_nonfinite,
    _fail,
)
from bpnet.io.model_read import _resolve, read_model_file  # noqa: F401 (as above)
from bpnet.io.paths import file_to_write, model_path  # noqa: F401 (as above)


def _check_array(name: str, arr: Any) -> np.ndarray:
    if not isinstance(arr, (np.ndarray, np.generic)):
        raise TypeError(
            f"arrays[{name!r}]: expected a numpy.ndarray, got "
            f"{type(arr).__module__}.{type(arr).__name__}; copy device arrays to "
            "the host first with backend.to_numpy()"
        )
    arr = np.asarray(arr)
    if arr.dtype.kind not in _KINDS:
        raise TypeError(
            f"arrays[{name!r}]: expected a bool, integer or floating-point dtype, "
            f"got {arr.dtype} (model files never hold Python objects)"
        )
    bad = _count_nonfinite(arr)
    if bad:
        raise ValueError(
            f"arrays[{name!r}]: contains {bad} NaN or Inf value(s); a model file "
            "holds finite numbers only (the training that produced them diverged?)"
        )
    return arr


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and obj.dtype.kind in _KINDS:
        return obj.tolist()
    raise TypeError(
        f"metadata: expected JSON values (dict, list, str, int, float, bool, "
        f"None), got {type(obj).__name__}: {obj!r:.60}"
    )


def write_model_file(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    metadata: dict[str, Any],
) -> Path:
    """Write arrays and JSON metadata to a model file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` is appended when the name has another suffix (or none), as
        ``numpy.savez`` does. An existing file is replaced only once the new
        one is complete and on disk; on any error it is left untouched and no
        temporary file remains.
    arrays : dict of str to numpy.ndarray
        Host arrays of any shape with a bool, integer or floating-point dtype;
        floating-point arrays must be finite. Names are letters, digits, ``_``
        and ``-``, in parts separated by ``/`` (e.g. ``"state/m/0"``).
    metadata : dict
        JSON-ready values (NumPy scalars and small arrays are converted; tuples
        come back as lists). The keys ``format``, ``format_version``,
        ``bpnet_version``, ``created`` and ``arrays`` (the manifest of shapes
        and dtypes) are added here and may not be given.

    Returns
    -------
    Path
        The file written.
    """
    path = model_path(path)
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays: expected a dict of name -> array, got {arrays!r:.60}")
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict, got {metadata!r:.60}")
    taken = sorted(set(metadata) & set(RESERVED_KEYS))
    if taken:
        raise ValueError(
            f"metadata: the keys {taken} are written by bpnet itself; rename them"
        )
    checked = {_check_name(k, "arrays"): _check_array(k, v) for k, v in arrays.items()}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bpnet_version": _bpnet_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "arrays": {
            k: {"shape": list(a.shape), "dtype": a.dtype.name}
            for k, a in checked.items()
        },
    }
    try:
        text = json.dumps({**header, **metadata}, default=_json_default)
    except ValueError as exc:  # e.g. a circular reference
        raise ValueError(f"metadata: cannot be written as JSON ({exc})") from None
    blob = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    if blob.size > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata: {blob.size} bytes of JSON, over the {MAX_METADATA_BYTES} "
            "that readers accept; store large data as arrays"
        )
    with atomic_open(path) as fh:
        # What numpy.savez does, with allow_pickle=False on every member.
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in [(METADATA, blob), *checked.items()]:
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)
    return path
