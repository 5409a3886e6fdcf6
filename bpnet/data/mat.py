"""ex4-style ``.mat`` files: ``X``/``y`` and the ``Theta1``/``Theta2``
weights, each variable checked and named in the error when it is not what
ex4 wrote."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.data.base import DataError, Dataset, split_dataset


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
    path: str | os.PathLike[str],
    test_size: float = 0.2,
    seed: int = 0,
    split: str = "shuffled",
) -> Dataset:
    """An ex4 data file (``ex4data1.mat``: 5000 20x20 digits) as a Dataset.

    X is scaled to [0, 1] by its own min and max; images are stored column
    major, as MATLAB writes them (``image_order="F"``). The split is
    ``split_dataset``'s.
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
    return split_dataset(
        X,
        y.reshape(-1).astype(np.int64),
        Path(path).stem,
        test_size,
        seed,
        classes=tuple(int(v) for v in values),
        image_shape=shape,
        split=split,
        image_order="F",
    )


def write_ex4_standin(
    folder: str | os.PathLike[str], seed: int = 0
) -> tuple[Path, Path]:
    """Write stand-ins for ex4's ``ex4data1.mat`` and ``ex4weights.mat``.

    ex4's files are not bpnet's to ship; these have their layout, so code
    written for them runs unchanged. The data file holds scikit-learn's 1797
    8x8 digits upsampled to 20x20 (pixels in [0, 1]), one image per row of X
    in MATLAB's column-major order (``X[i].reshape(20, 20, order="F")`` stands
    upright), and y of shape (n, 1) with ex4's labels 1..10, 10 for the digit
    0. The weights file holds ``Theta1`` (25, 401) and ``Theta2`` (10, 26),
    drawn uniformly in [-0.12, 0.12] as ex4's ``randInitializeWeights`` does,
    from ``seed``.

    Returns
    -------
    (data_path, weights_path) : the two ``.mat`` files written into ``folder``
    """
    from scipy.io import savemat
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder: {folder} is not a folder")
    digits, labels = load_digits(return_X_y=True)
    images = zoom(digits.reshape(-1, 8, 8) / 16.0, (1, 2.5, 2.5), order=1)
    X = images.transpose(0, 2, 1).reshape(len(images), 400)  # column-major rows
    y = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
    rng = np.random.default_rng(seed)
    thetas = {
        "Theta1": rng.uniform(-0.12, 0.12, size=(25, 401)),
        "Theta2": rng.uniform(-0.12, 0.12, size=(10, 26)),
    }
    data_path = folder / "ex4data1-standin.mat"
    weights_path = folder / "ex4weights-standin.mat"
    savemat(data_path, {"X": np.clip(X, 0.0, 1.0), "y": y})
    savemat(weights_path, thetas)
    return data_path, weights_path


# --- helpers ------------------------------------------------------------------
