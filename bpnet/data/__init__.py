"""Datasets: scikit-learn's bundled 8x8 digits, MNIST and Fashion-MNIST from
their IDX files, and ex4-style ``.mat`` files.

Every loader returns host NumPy arrays: X as float32 scaled to [0, 1] with one
row per sample, y as int64 labels 0..k-1. A fit copies them to the device once.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.data.base import SPLITS, DataError, Dataset, split_dataset
from bpnet.data.mat import load_mat, load_mat_dataset, write_ex4_standin
from bpnet.io.atomic import atomic_write_bytes

__all__ = [
    "DATASET_NAMES",
    "DataError",
    "Dataset",
    "FASHION_CLASSES",
    "IDX_FILES",
    "SPLITS",
    "default_cache_dir",
    "fetch",
    "load_dataset",
    "load_digits",
    "load_mat",
    "load_mat_dataset",
    "load_mnist",
    "one_hot",
    "read_idx",
    "split_dataset",
    "write_ex4_standin",
]


#: Each spelling of a dataset's name -> the name it goes by (``Dataset.name``)
DATASET_NAMES = {
    "digits": "digits",
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "fashion": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
}

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# Accepted SHA-256 sums per file. Fashion-MNIST: the official files, and the
# same data recompressed without the gzip file name (the copies in shared/data).
_MNIST_SUMS = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
_FASHION_SUMS = {
    "train-images-idx3-ubyte.gz": (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    ),
    "train-labels-idx1-ubyte.gz": (
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    ),
}
SOURCES: dict[str, dict[str, Any]] = {
    "mnist": {
        "mirrors": (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        "sha256": _MNIST_SUMS,
    },
    "fashion": {
        "mirrors": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "sha256": _FASHION_SUMS,
    },
}

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_IDX_BYTES = 2**31  # no real IDX file is larger; a corrupt header may claim so


# --- scikit-learn's digits --------------------------------------------------
def load_digits(
    test_size: float = 0.2, seed: int = 0, split: str = "shuffled"
) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 samples), pixels / 16, with a
    stratified train/test split (``test_size``, ``random_state=seed``; see
    ``split_dataset`` for ``split`` and ``test_size=0``)."""
    from sklearn.datasets import load_digits as sk_digits

    X, y = sk_digits(return_X_y=True)
    return split_dataset(
        (X / 16.0).astype(np.float32),
        y.astype(np.int64),
        "digits",
        test_size,
        seed,
        classes=tuple(range(10)),
        image_shape=(8, 8),
        split=split,
    )


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into an array of its stored shape.

    Raises ``DataError`` naming the file when the magic number, the dimensions
    or the payload length are wrong (a truncated download, say).
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            header = fh.read(4)
            if len(header) < 4 or header[0] != 0 or header[1] != 0:
                magic = header.hex() or "empty"
                raise DataError(f"{path}: not an IDX file (bad magic number {magic})")
            dtype = _IDX_TYPES.get(header[2])
            ndim = header[3]
            if dtype is None or not 1 <= ndim <= 4:
                raise DataError(
                    f"{path}: unsupported IDX type 0x{header[2]:02x} "
                    f"or {ndim} dimensions"
                )
            dims_raw = fh.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            size = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            if size > MAX_IDX_BYTES:
                raise DataError(f"{path}: header claims {size} bytes; refusing")
            payload = fh.read(size + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"{path}: cannot be read as IDX ({exc})") from None
    if len(payload) != size:
        raise DataError(
            f"{path}: expected {size} bytes of data for shape {dims}, found "
            f"{len(payload) if len(payload) <= size else 'more'}; the file is "
            "truncated or corrupt, download it again"
        )
    return (
        np.frombuffer(payload, dtype=dtype)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


def _check_idx(path: Path, name: str, arr: np.ndarray) -> None:
    """An IDX array fit to be ``name`` (``train_images``, ``test_labels``, ...):
    the error names the file and the variable."""
    images = name.endswith("images")
    if arr.ndim != (3 if images else 1):
        what = "(n, height, width) images" if images else "(n,) labels"
        raise DataError(f"{path}: {name}: expected {what}, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(f"{path}: {name}: holds no samples")
    if images and arr.dtype.kind == "f":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise DataError(f"{path}: {name}: contains {bad} NaN or Inf value(s)")
    if not images and (arr.dtype.kind not in "iu" or int(arr.min()) < 0):
        raise DataError(
            f"{path}: {name}: expected integer labels >= 0, got dtype {arr.dtype} "
            f"with values from {arr.min()} to {arr.max()}"
        )


def default_cache_dir(kind: str) -> Path:
    """``$BPNET_DATA_DIR/<kind>`` or ``~/.cache/bpnet/<kind>``."""
    root = os.environ.get("BPNET_DATA_DIR")
    return Path(root) / kind if root else Path.home() / ".cache" / "bpnet" / kind


def sha256sum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
        return resp.read()


def fetch(kind: str, directory: Path, names: Any = None) -> None:
    """Download the IDX files of ``kind`` (all four, or those in ``names``)
    into ``directory``, checking each one's SHA-256 before it is moved into
    place."""
    source = SOURCES[kind]
    directory.mkdir(parents=True, exist_ok=True)
    for name, digests in source["sha256"].items():
        if names is not None and name not in names:
            continue
        target = directory / name
        if target.exists() and sha256sum(target) in digests:
            continue
        errors = []
        for mirror in source["mirrors"]:
            try:
                data = _download(mirror + name)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(f"{mirror}: {exc}")
                continue
            got = hashlib.sha256(data).hexdigest()
            if got not in digests:
                errors.append(f"{mirror}: SHA-256 {got} != expected {digests[0]}")
                continue
            atomic_write_bytes(target, data)
            break
        else:
            raise DataError(
                f"could not download {name} ({'; '.join(errors)}). Put the four files "
                f"{', '.join(IDX_FILES.values())} in {directory} or pass --data-dir DIR"
            )


def load_mnist(
    kind: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    splits: Any = ("train", "test"),
) -> Dataset:
    """MNIST or Fashion-MNIST from the four standard ``.gz`` IDX files.

    Parameters
    ----------
    kind : {"mnist", "fashion"}
        "fashion-mnist" (``load_dataset``'s and ``--dataset``'s name) is
        "fashion" too: any spelling of ``DATASET_NAMES``, in any case.
    data_dir : path, optional
        Folder holding the files. Default: the cache folder
        (``$BPNET_DATA_DIR/<kind>`` or ``~/.cache/bpnet/<kind>``), where missing
        files are downloaded (with SHA-256 checks) when ``download`` is true.
    verify : bool
        Check the files' SHA-256 against the published sums.
    splits : sequence of {"train", "test"}
        The splits to read (and download); one left out comes back as empty
        arrays (0 rows).
    """
    name = DATASET_NAMES.get(kind.strip().lower() if isinstance(kind, str) else kind)
    if name not in ("mnist", "fashion-mnist"):
        raise ValueError(
            "kind: expected 'mnist' or 'fashion' (also spelled 'fashion-mnist', as "
            f"load_dataset and --dataset name it), got {kind!r}"
        )
    kind = "fashion" if name == "fashion-mnist" else "mnist"
    try:
        wanted = tuple(dict.fromkeys(splits)) if not isinstance(splits, str) else ()
    except TypeError:
        wanted = ()
    if not wanted or not set(wanted) <= {"train", "test"}:
        raise ValueError(
            "splits: expected a non-empty sequence of 'train' and 'test', "
            f"got {splits!r}"
        )
    splits = wanted
    files = {k: n for k, n in IDX_FILES.items() if k.split("_")[0] in splits}
    directory = Path(data_dir) if data_dir is not None else default_cache_dir(kind)
    if data_dir is not None and not directory.is_dir():
        raise DataError(f"data_dir: {directory} is not a folder")
    missing = [n for n in files.values() if not (directory / n).exists()]
    if missing:
        if data_dir is not None:
            label = "Fashion-MNIST" if kind == "fashion" else "MNIST"
            raise DataError(
                f"data_dir: expected the {label} IDX .gz files in {directory}; "
                f"missing {', '.join(missing)}"
            )
        if not download:
            raise DataError(
                f"{kind}: missing {', '.join(missing)} in the cache folder "
                f"{directory}; put the IDX .gz files there, or pass data_dir "
                "(bpnet-train --data-dir DIR)"
            )
        fetch(kind, directory, files.values())
    sums = SOURCES[kind]["sha256"]
    if verify:
        for name in files.values():
            got = sha256sum(directory / name)
            if got not in sums[name]:
                raise DataError(
                    f"{directory / name}: SHA-256 {got} does not match the published "
                    f"{sums[name][0]}; the file is damaged or not {kind}'s"
                )
    arrays = {k: read_idx(directory / n) for k, n in files.items()}
    for key, arr in arrays.items():
        _check_idx(directory / files[key], key, arr)
    for split in splits:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(
                f"{directory / files[split + '_images']}: {split}_images: "
                f"{len(images)} images, but {files[split + '_labels']} has "
                f"{len(labels)} labels; they must match"
            )
    shape = arrays[f"{splits[0]}_images"].shape[1:]
    flat = int(np.prod(shape))
    for split in {"train", "test"} - set(splits):  # not asked for: no rows
        arrays[f"{split}_images"] = np.zeros((0, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.zeros((0,), dtype=np.uint8)

    def scale(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), flat).astype(np.float32) / np.float32(255.0)

    return Dataset(
        scale(arrays["train_images"]),
        arrays["train_labels"].astype(np.int64),
        scale(arrays["test_images"]),
        arrays["test_labels"].astype(np.int64),
        "fashion-mnist" if kind == "fashion" else "mnist",
        FASHION_CLASSES if kind == "fashion" else tuple(range(10)),
        tuple(shape),
    )


def one_hot(y: Any, n_classes: int) -> np.ndarray:
    """(n,) integer labels -> (n, n_classes) float32 one-hot rows."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"y: expected a 1-D integer array, got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"y: expected labels in [0, {n_classes - 1}], got {y.min()}..{y.max()}"
        )
    out = np.zeros((len(y), n_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def load_dataset(name: str, data_dir: Any = None, **kwargs: Any) -> Dataset:
    """'digits', 'fashion-mnist' (or 'fashion') or 'mnist' by name: any
    spelling of ``DATASET_NAMES``, in any case."""
    canonical = DATASET_NAMES.get(
        name.strip().lower() if isinstance(name, str) else name
    )
    if canonical == "digits":
        return load_digits(**kwargs)
    if canonical is not None:
        return load_mnist(kind=canonical, data_dir=data_dir, **kwargs)
    raise ValueError(
        "dataset: expected 'digits', 'fashion-mnist' (also spelled 'fashion', as "
        f"load_mnist names it) or 'mnist', got {name!r}"
    )
