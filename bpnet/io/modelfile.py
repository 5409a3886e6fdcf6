"""The model file format: a NumPy ``.npz`` archive of parameter arrays plus a
JSON metadata document, readable without pickle.

Layout (format_version 1)::

    NAME.npy          one member per array, NumPy's .npy format, no objects
    __metadata__.npy  uint8 array of UTF-8 JSON: {"format": "bpnet-model",
                      "format_version": 1, "bpnet_version", "created",
                      "arrays": {NAME: {"shape": [...], "dtype": "float32"}}, ...}

Reading checks the archive before trusting any of it: member names, count and
declared sizes are bounded and every ``.npy`` header is checked against its
member size before a byte of data is allocated, so a zip bomb or a header that
claims a huge shape costs nothing. Each member is then read with
``numpy.lib.format.read_array(allow_pickle=False)``, as ``numpy.load`` does
for an ``.npz``, and compared with the manifest.

The memory budget of a load is in ``bpnet.io.budget``, the names files are
written to in ``bpnet.io.paths``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np

from bpnet._version import __version__
from bpnet.io.atomic import atomic_open, check_path
from bpnet.io.budget import (  # noqa: F401 (also imported from here)
    LIBRARY_WAY,
    MAX_MEMORY,
    MAX_MEMORY_ENV,
    human_bytes,
    memory_budget,
    over_budget,
    parse_bytes,
)
from bpnet.io.paths import file_to_write, model_path  # noqa: F401 (as above)
from bpnet.io.plain import read_npy_header

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


# --- writing ----------------------------------------------------------------
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


# --- reading ----------------------------------------------------------------
def _resolve(path: Path) -> Path:
    """The file to read: ``path`` itself, else ``path`` + ``.npz``."""
    if path.exists():
        return path
    alt = model_path(path)
    if alt != path and alt.exists():
        return alt
    tried = repr(str(path)) + (f" or {str(alt)!r}" if alt != path else "")
    raise FileNotFoundError(2, f"No model file at {tried}", str(path))


def _member_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple:
    """(shape, dtype) from a member's .npy header, checked against its size."""
    with zf.open(info) as fh:
        shape, dtype, header_len = read_npy_header(fh)
    name = info.filename[:-4]
    if dtype.hasobject:
        raise ModelFileError(
            f"array {name!r} holds Python objects (pickle); a model file never "
            "does, and loading it could run code: refused"
        )
    if dtype.kind not in _KINDS or dtype.subdtype is not None:
        raise ModelFileError(f"array {name!r} has unsupported dtype {dtype}")
    if any(s < 0 for s in shape):
        raise ModelFileError(f"array {name!r} has a negative dimension in {shape}")
    if header_len + math.prod(shape) * dtype.itemsize != info.file_size:
        raise ModelFileError(
            f"array {name!r}: its header says shape {shape} of {dtype}, which does "
            f"not fit the {info.file_size} bytes stored (truncated or corrupted)"
        )
    return shape, dtype


def _scan(zf: zipfile.ZipFile, max_bytes: int, max_elements: int) -> dict[str, tuple]:
    """Check the archive's members; return {name: (shape, dtype)}."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{len(infos)} members, more than {MAX_MEMBERS}")
    headers: dict[str, tuple] = {}
    total_bytes = total_elements = 0
    for info in infos:
        name = info.filename[:-4]
        if (
            not info.filename.endswith(".npy")
            or (name != METADATA and not _NAME.fullmatch(name))
            or len(name) > _MAX_NAME
        ):
            raise ModelFileError(
                f"unexpected member {info.filename[:80]!r}; a model file holds "
                f"only NAME.npy arrays and {METADATA}.npy"
            )
        if name in headers:
            raise ModelFileError(f"member {info.filename!r} appears twice")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"member {info.filename!r} uses an unsupported compression method"
            )
        total_bytes += info.file_size
        if total_bytes > max_bytes:
            raise ModelFileError(
                f"its contents unpack to more than max_bytes={max_bytes}; pass a "
                "larger max_bytes if you trust this file"
            )
        headers[name] = _member_header(zf, info)
        if name != METADATA:
            total_elements += math.prod(headers[name][0])
            if total_elements > max_elements:
                raise ModelFileError(
                    f"its arrays hold more than max_elements={max_elements} "
                    "numbers; pass a larger max_elements if you trust this file"
                )
    return headers


def _parse_metadata(blob: np.ndarray) -> dict:
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise ModelFileError(f"{METADATA} is not a 1-D uint8 array")
    if blob.size > MAX_METADATA_BYTES:
        raise ModelFileError(f"{METADATA} is over {MAX_METADATA_BYTES} bytes")
    try:
        meta = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"its metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError("its metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"not a bpnet model file (metadata format {meta.get('format')!r}, "
            f"expected {FORMAT!r})"
        )
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"written by a newer bpnet ({meta.get('bpnet_version', 'unknown')!s:.40}, "
            f"format_version {version}); this bpnet ({_bpnet_version()}) reads "
            f"format_version {FORMAT_VERSION}: upgrade bpnet "
            "(pip install -U bpnet-arrayapi)"
        )
    return meta


def _check_manifest(meta: dict, headers: dict[str, tuple]) -> None:
    manifest = meta.get("arrays")
    if not isinstance(manifest, dict):
        raise ModelFileError("its metadata has no 'arrays' manifest")
    stored = set(headers) - {METADATA}
    missing, extra = sorted(set(manifest) - stored), sorted(stored - set(manifest))
    if missing:
        raise ModelFileError(f"arrays {missing[:10]} are listed but missing")
    if extra:
        raise ModelFileError(f"arrays {extra[:10]} are stored but not listed")
    for name, entry in manifest.items():
        shape, dtype = headers[name]
        ok = isinstance(entry, dict) and isinstance(entry.get("shape"), list)
        if not ok or entry["shape"] != list(shape) or entry.get("dtype") != dtype.name:
            raise ModelFileError(
                f"array {name!r} is stored with shape {list(shape)} and dtype "
                f"{dtype.name}, but the manifest says {entry!r:.100}"
            )


def _read_member(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    with zf.open(name + ".npy") as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _read(
    fh: Any, max_bytes: int, max_elements: int, check: Check | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise ModelFileError("is empty (0 bytes)")
    if size > max_bytes:
        raise ModelFileError(
            f"is {size} bytes, over max_bytes={max_bytes}; pass a larger "
            "max_bytes if you trust this file"
        )
    try:
        zf = zipfile.ZipFile(fh)
    except zipfile.BadZipFile:
        raise ModelFileError(
            "not a bpnet model file: not a zip (.npz) archive, or a truncated one"
        ) from None
    with zf:
        # The metadata first: a newer format_version must say "upgrade",
        # whatever else the newer layout holds.
        try:
            info = zf.getinfo(METADATA + ".npy")
        except KeyError:
            raise ModelFileError(
                f"a zip archive but not a bpnet model file (no {METADATA})"
            ) from None
        if info.file_size > MAX_METADATA_BYTES + 4096:
            raise ModelFileError(f"{METADATA} is over {MAX_METADATA_BYTES} bytes")
        _member_header(zf, info)
        meta = _parse_metadata(_read_member(zf, METADATA))
        headers = _scan(zf, max_bytes, max_elements)
        _check_manifest(meta, headers)
        del headers[METADATA]
        # What the metadata describes decides which arrays may be there and
        # their shapes, before a byte of any of them is unpacked.
        wanted = None if check is None else check(meta, headers)
        arrays = {}
        for name, (shape, dtype) in headers.items():
            if wanted is not None and name not in wanted:
                continue
            arr = _read_member(zf, name)
            if arr.shape != shape or arr.dtype != dtype:  # pragma: no cover
                raise ModelFileError(f"array {name!r} does not match its header")
            if not arr.dtype.isnative:
                arr = arr.astype(arr.dtype.newbyteorder("="))
            if _count_nonfinite(arr):
                raise ModelFileError(
                    f"array {name!r} contains {_count_nonfinite(arr)} NaN or Inf "
                    "value(s)"
                )
            arrays[name] = arr
    return arrays, meta


def read_model_file(
    path: str | os.PathLike[str],
    max_bytes: int = MAX_BYTES,
    max_elements: int = MAX_ELEMENTS,
    *,
    check: Check | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and check a model file; nothing in it can run code.

    Parameters
    ----------
    path : str or os.PathLike
        The file; when it does not exist and has no ``.npz`` suffix,
        ``path + ".npz"`` is tried (the name ``write_model_file`` gives).
    max_bytes : int, default 2 GiB
        Largest file size, and largest total of uncompressed member sizes.
    max_elements : int, default 2**28
        Largest total number of array elements.
    check : callable, optional
        ``check(metadata, headers)``, called once the metadata is parsed and
        every member's header is checked, before any array is unpacked;
        ``headers`` maps each array's name to its (shape, dtype). It raises
        ``ModelFileError`` when the arrays are not the ones the metadata
        describes, and returns the names of the arrays to read (None: all).

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        Host arrays in native byte order, each matching the manifest's shape
        and dtype; floating-point ones are finite.
    metadata : dict
        The JSON document, including ``format``, ``format_version``,
        ``bpnet_version``, ``created`` and the ``arrays`` manifest.

    Raises
    ------
    FileNotFoundError
        No file at ``path`` (nor at ``path + ".npz"``).
    ModelFileError
        Anything else: a directory, an empty, truncated, damaged or non-zip
        file, members other than arrays, object (pickle) arrays, sizes over
        the limits, invalid metadata, a newer ``format_version`` (upgrade
        bpnet), arrays that differ from the manifest, NaN or Inf.
    """
    path = _resolve(check_path(path))
    for value, name in ((max_bytes, "max_bytes"), (max_elements, "max_elements")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    if path.is_dir():
        raise _fail(path, "is a directory, not a model file")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise _fail(path, "is not a regular file")
    with open(path, "rb") as fh:
        try:
            arrays, meta = _read(fh, max_bytes, max_elements, check)
        except ModelFileError as exc:
            raise _fail(path, str(exc)) from exc.__cause__
        except MemoryError:
            raise
        except zipfile.BadZipFile as exc:
            raise _fail(path, f"damaged ({exc}); restore it from a copy") from exc
        except Exception as exc:  # whatever a damaged archive makes zipfile raise
            raise _fail(
                path, f"damaged or not a model file ({type(exc).__name__}: {exc})"
            ) from exc
    return arrays, meta
