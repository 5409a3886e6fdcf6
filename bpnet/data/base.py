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
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    classes: tuple = field(default=tuple(range(10)))
    image_shape: tuple | None = None


def _split_dataset(X, y, name, test_size, seed, classes, image_shape) -> Dataset:
    from sklearn.model_selection import train_test_split

    if not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise ValueError(f"test_size: expected a fraction in (0, 1), got {test_size!r}")
    counts = np.bincount(y)
    n_classes, n_test = int((counts > 0).sum()), int(np.ceil(test_size * len(y)))
    if n_test >= len(y):
        raise ValueError(
            f"test_size: {test_size} of the {len(y)} samples of {name} leaves none "
            "to train on; pick a smaller fraction"
        )
    fits = counts[counts > 0].min() >= 2 and n_classes <= min(n_test, len(y) - n_test)
    stratify = y if fits else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=stratify
    )
    return Dataset(X_tr, y_tr, X_te, y_te, name, classes, image_shape)


# --- IDX (MNIST, Fashion-MNIST) ---------------------------------------------
