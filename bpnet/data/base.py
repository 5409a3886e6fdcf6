"""What every loader returns: a ``Dataset`` split on the host, and the error
a damaged or missing file raises."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    image_order : {"C", "F"}
        How a row unravels into an image: "C" (row-major) or "F"
        (column-major, as MATLAB writes ex4's digits).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    classes: tuple = field(default=tuple(range(10)))
    image_shape: tuple | None = None
    image_order: str = "C"


#: How ``split_dataset`` picks the test rows: a seeded shuffle (stratified
#: where it can be), or the last rows as they lie in the file
SPLITS = ("shuffled", "tail")


def check_test_size(test_size: object, name: str = "test_size") -> float:
    """``test_size`` as a fraction in [0, 1) (0: no test split)."""
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, (int, float))
        or not 0 <= test_size < 1
    ):
        raise ValueError(
            f"{name}: expected a fraction in [0, 1) (0 trains on every row), got "
            f"{test_size!r}"
        )
    return float(test_size)


def split_dataset(
    X: np.ndarray,
    y: np.ndarray,
    name: str,
    test_size: float = 0.2,
    seed: int = 0,
    classes: tuple | None = None,
    image_shape: tuple | None = None,
    *,
    split: str = "shuffled",
    image_order: str = "C",
) -> Dataset:
    """Split rows ``X`` and their labels ``y`` (0..k-1) into a Dataset.

    Parameters
    ----------
    test_size : float in [0, 1), default 0.2
        The test fraction (``ceil(test_size * n)`` rows); 0 trains on every
        row and leaves the test split empty.
    seed : int, default 0
        The shuffle's seed (scikit-learn's ``random_state``).
    split : {"shuffled", "tail"}, default "shuffled"
        "shuffled": scikit-learn's ``train_test_split``, seeded, stratified by
        class when every class has at least 2 rows (and there are enough test
        and train rows for one of each), plainly shuffled otherwise. "tail":
        the last rows, in the file's order (slices, so a memory map stays one).
    """
    from sklearn.model_selection import train_test_split

    test_size = check_test_size(test_size)
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    classes = tuple(range(int(y.max()) + 1)) if classes is None else classes
    n = len(y)
    n_test = int(np.ceil(test_size * n))
    if n_test >= n:
        raise ValueError(
            f"test_size: {test_size} of the {n} samples of {name} leaves none "
            "to train on; pick a smaller fraction"
        )
    if n_test == 0 or split == "tail":
        cut = n - n_test
        parts = (X[:cut], y[:cut], X[cut:], y[cut:])
    else:
        counts = np.bincount(y)
        n_classes = int((counts > 0).sum())
        fits = counts[counts > 0].min() >= 2 and n_classes <= min(n_test, n - n_test)
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=test_size, random_state=seed, stratify=y if fits else None
        )
        parts = (X_tr, y_tr, X_te, y_te)
    return Dataset(*parts, name, classes, image_shape, image_order)
