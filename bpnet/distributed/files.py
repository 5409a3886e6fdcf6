"""Data sets in ``.npy`` / ``.npz`` files, read through memory maps.

``numpy.load(mmap_mode="r")`` maps a ``.npy`` file without reading it; slices
of the map stay maps, and a data-parallel ``fit`` then reads only each step's
rows of this rank. ``.npz`` members cannot be mapped: they are read whole.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from bpnet.io.plain import check_npz_budget, load_npy, npz_member


def load_arrays(
    path: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    test_size: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple]:
    """X from ``path`` (``.npy``, memory-mapped, with labels from ``labels``;
    or ``.npz`` holding ``X`` and ``y``) as ``X_train, y_train, X_test,
    y_test, classes``.

    The last ``ceil(test_size * n)`` rows are the test split: a contiguous
    split keeps both parts memory maps (shuffle the file once if its rows are
    sorted by class). Labels become indices 0..k-1 of their sorted values.
    ``bpnet-train`` reads with ``read_arrays`` and splits with
    ``bpnet.data.split_dataset`` (shuffled by default).
    """
    X, y, classes = read_arrays(path, labels)
    n_test = math.ceil(test_size * X.shape[0])
    cut = X.shape[0] - n_test
    if cut <= 0:
        raise ValueError(
            f"--test-size: {test_size} of the {X.shape[0]} rows of {path} leaves "
            "none to train on; pick a smaller fraction"
        )
    return X[:cut], y[:cut], X[cut:], y[cut:], classes


def read_arrays(
    path: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """X from ``path`` (``.npy``, memory-mapped, with labels from ``labels``;
    or ``.npz`` holding ``X`` and ``y``), checked, as ``X, y, classes``:
    the labels become indices 0..k-1 of their sorted values, ``classes``."""
    path = Path(path)
    if path.suffix == ".npz":
        if labels is not None:
            raise ValueError(f"--labels: {path} holds its own y; got --labels {labels}")
        y_flag = "--data"
        check_npz_budget(path, y_flag)
        with load_npy(path, y_flag, "an .npz file holding arrays X and y") as z:
            missing = {"X", "y"} - set(z.files)
            if missing:
                raise ValueError(
                    f"{path}: expected arrays X and y, missing {sorted(missing)} "
                    f"(it holds {z.files})"
                )
            X, y = (npz_member(z, key, y_flag, path) for key in ("X", "y"))
    elif path.suffix == ".npy":
        if labels is None:
            raise ValueError(f"--labels: {path} holds X only; give --labels y.npy")
        y_flag = "--labels"
        X = load_npy(path, "--data", "a .npy array of samples", mmap_mode="r")
        y = load_npy(labels, y_flag, "a .npy array of labels", archive=False)
    else:
        raise ValueError(f"--data: expected a .mat, .npy or .npz file, got {path}")
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"{path}: expected X of shape (n, features) and y of shape (n,), got "
            f"{X.shape} and {y.shape}"
        )
    if X.dtype.kind != "f":
        raise ValueError(
            f"{path}: X: expected floating-point values, got {X.dtype}; scale and "
            "save it as float32"
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{y_flag}: the labels contain NaN or Inf")
    if y.dtype.kind not in "iufbUS":
        raise ValueError(
            f"{y_flag}: expected labels of numbers or strings, got {y.dtype}"
        )
    values, y = np.unique(y, return_inverse=True)
    if len(values) < 2:
        raise ValueError(
            f"{y_flag}: expected labels of at least 2 classes, got only "
            f"{values.tolist()!r:.60} in all {y.shape[0]} rows"
        )
    y = y.reshape(-1).astype(np.int64)
    return X, y, tuple(v.item() for v in values)
