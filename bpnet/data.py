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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.io.atomic import atomic_write_bytes


class DataError(ValueError):
    """A dataset file is missing, damaged or not what it claims to be."""


@dataclass(frozen=True)
class Dataset:
    """A train/test split on the host.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, n_features), float32 in [0, 1]
    y_train, y_test : ndarray of shape (n,), int64 labels 0..k-1
    name : str
    classes : tuple
        The class names (or digits), indexed by label.
    image_shape : tuple or None
        (height, width) of one sample, for pictures.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    classes: tuple = field(default=tuple(range(10)))
    image_shape: tuple | None = None


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
def load_digits(test_size: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 samples), pixels / 16, with a
    stratified train/test split (``test_size``, ``random_state=seed``)."""
    from sklearn.datasets import load_digits as sk_digits

    X, y = sk_digits(return_X_y=True)
    return _split_dataset(
        (X / 16.0).astype(np.float32),
        y.astype(np.int64),
        "digits",
        test_size,
        seed,
        classes=tuple(range(10)),
        image_shape=(8, 8),
    )


def _split_dataset(X, y, name, test_size, seed, classes, image_shape) -> Dataset:
    from sklearn.model_selection import train_test_split

    if not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise ValueError(f"test_size: expected a fraction in (0, 1), got {test_size!r}")
    counts = np.bincount(y)
    n_classes, n_test = int((counts > 0).sum()), int(np.ceil(test_size * len(y)))
    fits = counts[counts > 0].min() >= 2 and n_classes <= min(n_test, len(y) - n_test)
    stratify = y if fits else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=stratify
    )
    return Dataset(X_tr, y_tr, X_te, y_te, name, classes, image_shape)


# --- IDX (MNIST, Fashion-MNIST) ---------------------------------------------
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
    if kind in ("fashion-mnist", "fashion_mnist"):
        kind = "fashion"
    if kind not in SOURCES:
        raise ValueError(f"kind: expected 'mnist' or 'fashion', got {kind!r}")
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


# --- ex4 .mat ---------------------------------------------------------------
def load_mat(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read an ex4-style ``.mat`` file: ``X``/``y`` and/or ``Theta1``,
    ``Theta2``. Returns the arrays found, by name. Labels 1..10 are ex4's
    digits (10 stands for 0) and become 0..9; other integer labels are kept."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        raw = loadmat(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # scipy raises several types for bad files
        raise DataError(f"{path}: not a readable .mat file ({exc})") from None
    out: dict[str, np.ndarray] = {}
    if "X" in raw or "y" in raw:
        if "X" not in raw or "y" not in raw:
            has, lacks = ("X", "y") if "X" in raw else ("y", "X")
            raise DataError(
                f"{path}: expected both X (one row per sample) and y (one label "
                f"per row); it has {has} but no {lacks}"
            )
        X = _mat_matrix(path, "X", raw["X"])
        y = _mat_plain(path, "y", raw["y"], text_ok=True).ravel()
        if len(X) != len(y):
            raise DataError(
                f"{path}: X has {len(X)} rows but y has {len(y)} labels; they must "
                "match"
            )
        out["X"], out["y"] = X, _mat_labels(path, y)
    for name in ("Theta1", "Theta2"):
        if name in raw:
            out[name] = _mat_matrix(path, name, raw[name])
    if not out:
        keys = sorted(k for k in raw if not k.startswith("__"))
        raise DataError(
            f"{path}: expected X and y (data) or Theta1 and Theta2 (weights), "
            f"found {keys}"
        )
    return out


def _mat_plain(path: Path, name: str, value: Any, text_ok: bool = False) -> np.ndarray:
    """A .mat variable as a plain NumPy array: not a cell array, a struct, a
    string or a sparse matrix, each named as what it is. With ``text_ok``, a
    char array or a cell array of strings passes, for the labels' check to
    show its first labels as text."""
    if not isinstance(value, np.ndarray):  # scipy.sparse, for a sparse matrix
        raise DataError(
            f"{path}: {name}: is a {type(value).__name__}; expected a full numeric "
            f"matrix (in MATLAB: {name} = full({name}))"
        )
    what = {
        "O": "a cell array",
        "V": "a struct",
        "U": "text (a char array)",
        "S": "text (a char array)",
    }.get(value.dtype.kind)
    if value.dtype.names is not None:
        what = "a struct"
    elif text_ok and value.dtype.kind in "US":
        what = None
    elif (
        text_ok
        and value.dtype.kind == "O"
        and all(isinstance(_unwrap(v), (str, bytes)) for v in value.reshape(-1))
    ):
        what = None
    if what is not None:
        raise DataError(f"{path}: {name}: is {what}; expected a numeric matrix")
    return value


def _mat_matrix(path: Path, name: str, value: Any) -> np.ndarray:
    """A .mat variable as a 2-D float64 matrix of real, finite numbers, with at
    least one row; checked before anything is scaled, so one NaN is reported
    as one NaN."""
    arr = _mat_plain(path, name, value)
    if arr.dtype.kind == "c":
        raise DataError(
            f"{path}: {name}: holds complex numbers; expected real ones (take "
            f"real({name}) or abs({name}) in MATLAB if that is what you mean)"
        )
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: {name}: has dtype {arr.dtype}; expected numbers")
    if arr.ndim != 2:
        raise DataError(f"{path}: {name}: expected a 2-D matrix, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{path}: {name}: is empty (shape {arr.shape})")
    arr = arr.astype(np.float64)
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise DataError(
            f"{path}: {name}: contains {bad} NaN or Inf value(s); clean or "
            "impute them first"
        )
    return arr


def _mat_labels(path: Path, y: np.ndarray) -> np.ndarray:
    """Integer class labels from a .mat ``y``: ex4's 1..10 (10 stands for the
    digit 0, MATLAB having no index 0) become 0..9; anything else non-negative
    integer is kept as it is."""
    if y.dtype.kind not in "iuf" or (
        y.dtype.kind == "f" and not np.array_equal(y, np.round(y))
    ):
        kind = "text" if y.dtype.kind in "OUS" else f"{y.dtype} (not whole numbers)"
        raise DataError(
            f"{path}: y: expected integer class labels (0, 1, ... or ex4's "
            f"1..10), got {kind} labels such as "
            f"{', '.join(_label_text(v) for v in y[:3])}"
        )
    labels = y.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DataError(
            f"{path}: y: expected class labels >= 0, got {int(labels.min())}"
        )
    present = set(np.unique(labels).tolist())
    if 10 in present and present <= set(range(1, 11)):
        return labels % 10  # ex4's convention: label 10 is the digit 0
    return labels


def _unwrap(value: Any) -> Any:
    """A MATLAB cell's content: 1x1 arrays (``array(['cat'], dtype='<U3')`` as
    loaded) unwrapped to the Python value ``'cat'``."""
    while isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    return value.item() if isinstance(value, np.generic) else value


def _label_text(value: Any) -> str:
    """A label as a reader would write it: a cell's content unwrapped."""
    value = _unwrap(value)
    return repr(value) if isinstance(value, (str, bytes, int, float)) else str(value)


def load_mat_dataset(
    path: str | os.PathLike[str], test_size: float = 0.2, seed: int = 0
) -> Dataset:
    """An ex4 data file (``ex4data1.mat``: 5000 20x20 digits) as a Dataset.

    X is scaled to [0, 1] by its own min and max; images are stored column
    major, as MATLAB writes them.
    """
    arrays = load_mat(path)
    if "X" not in arrays:
        raise DataError(f"{path}: holds weights only; a dataset needs X and y")
    X = arrays["X"]
    # classes are the label values present; y becomes their index (0..k-1)
    values, y = np.unique(arrays["y"], return_inverse=True)
    lo, hi = X.min(), X.max()
    X = ((X - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
    side = int(round(np.sqrt(X.shape[1])))
    shape = (side, side) if side * side == X.shape[1] else None
    return _split_dataset(
        X,
        y.reshape(-1).astype(np.int64),
        Path(path).stem,
        test_size,
        seed,
        classes=tuple(int(v) for v in values),
        image_shape=shape,
    )


# --- helpers ------------------------------------------------------------------
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
    """'digits', 'fashion-mnist' or 'mnist' by name."""
    if name == "digits":
        return load_digits(**kwargs)
    if name in ("fashion-mnist", "fashion", "mnist"):
        return load_mnist(kind=name, data_dir=data_dir, **kwargs)
    raise ValueError(
        f"dataset: expected 'digits', 'fashion-mnist' or 'mnist', got {name!r}"
    )
