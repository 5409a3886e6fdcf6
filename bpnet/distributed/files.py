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
    """
    path = Path(path)
    if path.suffix == ".npz":
        if labels is not None:
            raise ValueError(f"--labels: {path} holds its own y; got --labels {labels}")
        with np.load(path, allow_pickle=False) as z:
            missing = {"X", "y"} - set(z.files)
            if missing:
                raise ValueError(
                    f"{path}: expected arrays X and y, missing {sorted(missing)} "
                    f"(it holds {z.files})"
                )
            X, y = z["X"], z["y"]
    elif path.suffix == ".npy":
        if labels is None:
            raise ValueError(f"--labels: {path} holds X only; give --labels y.npy")
        X = np.load(path, mmap_mode="r", allow_pickle=False)
        y = np.load(labels, allow_pickle=False)
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
    values, y = np.unique(y, return_inverse=True)
    n_test = math.ceil(test_size * X.shape[0])
    cut = X.shape[0] - n_test
    y = y.reshape(-1).astype(np.int64)
    classes = tuple(v.item() for v in values)
    return X[:cut], y[:cut], X[cut:], y[cut:], classes
