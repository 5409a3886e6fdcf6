"""Plumbing shared by the plotting functions: an Agg figure, the atomic PNG
write, and checks of host data at the boundary.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.io.atomic import atomic_open

_INSTALL_HINT = "pip install 'bpnet-arrayapi[plot]'"


def new_figure(figsize: tuple[float, float], dpi: float) -> Any:
    """A Figure on an Agg canvas; a clear ImportError when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            f"bpnet.plots needs matplotlib, which is not installed; install it "
            f"with: {_INSTALL_HINT}"
        ) from exc
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: str | os.PathLike[str], dpi: float) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (temporary file, then rename)."""
    path = Path(path)
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return path


def check_figsize(
    figsize: Any, dpi: Any, default: tuple[float, float]
) -> tuple[tuple[float, float], float]:
    if figsize is None:
        figsize = default
    try:
        w, h = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise TypeError(
            f"figsize: expected (width, height) in inches, got {figsize!r}"
        ) from None
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise ValueError(f"figsize: expected positive sizes in inches, got {figsize!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise ValueError(f"dpi: expected a number > 0, got {dpi!r}")
    return (w, h), float(dpi)


def as_host(x: Any, name: str) -> np.ndarray:
    """A NumPy view of host data; device arrays are refused with a hint."""
    try:
        return np.asarray(x)
    except Exception:
        raise TypeError(
            f"{name}: expected host (NumPy) data, got {type(x).__name__}; copy it "
            "to the host first with backend.to_numpy()"
        ) from None


def check_labels(y: Any, name: str, n: int | None, n_classes: int | None) -> np.ndarray:
    """Integer class labels of shape (n,), within [0, n_classes) when given."""
    arr = as_host(y, name)
    if arr.ndim != 1:
        raise ValueError(
            f"{name}: expected 1-D class labels of shape (n_samples,), got shape "
            f"{arr.shape}"
        )
    if arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels, got {arr.shape[0]}")
    if n_classes is not None and arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"{name}: expected labels in [0, {n_classes - 1}] to index class_names, "
            f"got labels from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.int64)


def check_class_names(class_names: Any) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(
            f"class_names: expected a list of strings, got {type(class_names).__name__}"
        )
    return [str(c) for c in class_names]


def as_images(
    X: Any, name: str, image_shape: Any, order: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """Rows of ``X`` as an (n, h, w) float array."""
    arr = as_host(X, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if order not in ("C", "F"):
        raise ValueError(f"order: expected 'C' or 'F', got {order!r}")
    if arr.ndim == 3 and image_shape is None:
        image_shape = arr.shape[1:]
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1, order=order)
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D array (n_images, n_pixels) or 3-D "
            f"(n_images, height, width), got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got shape {arr.shape}")
    d = arr.shape[1]
    if image_shape is None:
        side = math.isqrt(d)
        if side * side != d:
            raise ValueError(
                f"image_shape: {name} has {d} values per image, which is not a "
                "perfect square; pass image_shape=(height, width)"
            )
        shape = (side, side)
    else:
        try:
            shape = tuple(int(s) for s in image_shape)
        except (TypeError, ValueError):
            raise TypeError(
                f"image_shape: expected (height, width), got {image_shape!r}"
            ) from None
        if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != d:
            raise ValueError(
                f"image_shape: expected (height, width) with height * width == {d} "
                f"(the values per image in {name}), got {image_shape!r}"
            )
    images = arr.astype(np.float64).reshape(arr.shape[0], *shape, order=order)
    return images, shape


def image_axes(fig: Any, count: int) -> list[Any]:
    """``count`` image axes on a square grid, with the spare cells hidden."""
    rows, cols = grid_shape(count)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    return list(axes[:count])


def grid_shape(count: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols
