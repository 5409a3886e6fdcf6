"""Reading a model file: the archive is checked before any of it is trusted.

Member names, count and declared sizes are bounded and every ``.npy`` header
is checked against its member size before a byte of data is allocated, so a
zip bomb or a header that claims a huge shape costs nothing. Each member is
then read with ``numpy.lib.format.read_array(allow_pickle=False)``, as
``numpy.load`` does for an ``.npz``, and compared with the manifest.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.io.atomic import check_path
from bpnet.io.model_format import (
    _KINDS,
    _MAX_NAME,
    _NAME,
    FORMAT,
    FORMAT_VERSION,
    MAX_BYTES,
    MAX_ELEMENTS,
    MAX_MEMBERS,
    MAX_METADATA_BYTES,
    METADATA,
    Check,
    ModelFileError,
    _bpnet_version,
    _count_nonfinite,
    _fail,
)
from bpnet.io.paths import model_path
from bpnet.io.plain import read_npy_header


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
