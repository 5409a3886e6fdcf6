"""Figures of a training run, written as PNG files.

Every function takes host NumPy data, draws on its own
:class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot state, no
display needed) and writes the PNG atomically: a temporary file in the same
directory, then :func:`os.replace`, so an existing picture is never left
half-written. matplotlib is the ``plot`` extra and is imported only here,
when a figure is drawn.

Redrawing the pictures of a saved run directory is
:func:`bpnet.cli.plot.plot_run` (``bpnet-plot DIR`` on the command line).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.plots.figure import (
    as_host,
    as_images,
    check_class_names,
    check_figsize,
    check_labels,
    grid_shape,
    image_axes,
    new_figure,
    save_png,
)

__all__ = [
    "plot_confusion_matrix",
    "plot_first_layer",
    "plot_history",
    "plot_image_grid",
]

HISTORY_KEYS = (
    "loss",
    "val_loss",
    "test_loss",
    "accuracy",
    "val_accuracy",
    "test_accuracy",
)
_CURVE_LABELS = {"val": "validation", "test": "test"}


def curve_label(key: str, values: Any) -> str:
    """A history curve's legend: its name and last finite value, accuracies
    to four decimals, losses to four significant figures.

    The training curves are what fit recorded while training: for minibatches
    the mean over the epoch's batches, as the weights moved (and with dropout
    on). The whole-set figures after training, which ``bpnet-train`` prints,
    differ from them, so their legend says "while training".
    """
    name = _CURVE_LABELS.get(key.split("_")[0], "train, while training")
    arr = np.asarray(values, dtype=np.float64)
    last = arr[np.isfinite(arr)]
    if not last.size:
        return name
    figure = f"{last[-1]:.4f}" if key.endswith("accuracy") else f"{last[-1]:.4g}"
    return f"{name} ({figure})"


def plot_history(
    history: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    figsize: tuple[float, float] = (10.0, 4.0),
    dpi: float = 100,
) -> Path:
    """Plot training curves: loss and accuracy per epoch, train and validation
    (or test).

    Parameters
    ----------
    history : mapping of str to sequence of float
        Per-epoch values under ``"loss"``, ``"accuracy"``, ``"val_loss"`` and
        ``"val_accuracy"`` (a held-out validation split), ``"test_loss"`` and
        ``"test_accuracy"`` (the test split, watched during training); any may
        be missing or empty (other keys are ignored). Epoch ``i`` of a list of
        length n is drawn at x = i + 1. NaN values (a diverged epoch) leave a
        gap.
    path : path-like
        Where to write the PNG; its directory must exist.
    title : str, optional
        Figure title, e.g. the data set's name.
    figsize : (float, float), default=(10, 4)
        Width and height in inches; the PNG is ``figsize * dpi`` pixels.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    Path
        ``path``. A panel is drawn for loss and one for accuracy, each only
        when it has values; a history with none raises ValueError.
    """
    if not isinstance(history, Mapping):
        raise TypeError(
            f"history: expected a dict of lists keyed {HISTORY_KEYS}, got "
            f"{type(history).__name__}"
        )
    size, dpi = check_figsize(figsize, dpi, (10.0, 4.0))
    curves: dict[str, np.ndarray] = {}
    for key in HISTORY_KEYS:
        values = history.get(key)
        if values is None:
            continue
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"history[{key!r}]: expected a list of numbers, got {values!r:.80}"
            ) from None
        if arr.ndim != 1:
            raise ValueError(
                f"history[{key!r}]: expected a flat list (one value per epoch), got "
                f"shape {arr.shape}"
            )
        if arr.size:
            curves[key] = arr
    panels = [
        (name, [k for k in (name, f"val_{name}", f"test_{name}") if k in curves])
        for name in ("loss", "accuracy")
    ]
    panels = [(name, keys) for name, keys in panels if keys]
    if not panels:
        raise ValueError(
            f"history: no values to plot under {', '.join(HISTORY_KEYS)}; got keys "
            f"{sorted(history)}"
        )
    fig = new_figure(size, dpi)
    fig.set_layout_engine("constrained", w_pad=0.08, h_pad=0.08)
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, (name, keys) in zip(axes, panels):
        for key in keys:
            y = curves[key]
            epochs = np.arange(1, y.size + 1)
            label = curve_label(key, y)
            ax.plot(epochs, y, marker="o" if y.size <= 30 else None, ms=3, label=label)
        ax.set_title(name.capitalize())
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_png(fig, path, dpi)


def plot_image_grid(
    X: Any,
    y_true: Any = None,
    y_pred: Any = None,
    *,
    path: str | os.PathLike[str],
    image_shape: tuple[int, int] | None = None,
    class_names: Sequence[str] | None = None,
    n: int = 25,
    order: str = "C",
    cmap: str = "gray",
    figsize: tuple[float, float] | None = None,
    dpi: float = 100,
) -> Path:
    """Draw the first ``n`` images on a square grid, titled with their labels.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_pixels) or (n_samples, height, width)
        Images, one per row. Each image is scaled to its own range.
    y_true, y_pred : array_like of int, shape (n_samples,), optional
        Labels for the titles. With both, a title reads ``"pred (true)"`` and
        wrong predictions are drawn in red; with one, the title is that label.
    path : path-like
        Where to write the PNG (keyword-only); its directory must exist.
    image_shape : (int, int), optional
        (height, width) of one image; inferred as square when None.
    class_names : sequence of str, optional
        Names for labels 0..k-1, used in the titles.
    n : int, default=25
        How many images to draw (at most ``n_samples``).
    order : {"C", "F"}, default="C"
        How rows unravel into images: "F" for column-major data such as
        ex4's ``ex4data1.mat``.
    cmap : str, default="gray"
        A matplotlib colormap name.
    figsize : (float, float), optional
        Inches; by default 1.5 inches per grid cell.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    Path
        ``path``.
    """
    images, _ = as_images(X, "X", image_shape, order)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    names = check_class_names(class_names)
    k = None if names is None else len(names)
    m = images.shape[0]
    true = None if y_true is None else check_labels(y_true, "y_true", m, k)
    pred = None if y_pred is None else check_labels(y_pred, "y_pred", m, k)
    count = min(int(n), m)
    rows, cols = grid_shape(count)
    size, dpi = check_figsize(figsize, dpi, (1.5 * cols, 1.5 * rows + 0.3))
    fig = new_figure(size, dpi)
    # Room above the top row, in inches, for its titles and the heading.
    top = 1.0 - min(0.5, 0.55 / size[1])
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=top, hspace=0.35)

    def name(label: int) -> str:
        return str(label) if names is None else names[label]

    for i, ax in enumerate(image_axes(fig, count)):
        ax.imshow(images[i], cmap=cmap, interpolation="nearest")
        if pred is not None and true is not None:
            wrong = pred[i] != true[i]
            text = f"{name(pred[i])} ({name(true[i])})" if wrong else name(pred[i])
            ax.set_title(text, fontsize=9, color="red" if wrong else "black")
        elif pred is not None or true is not None:
            ax.set_title(name((pred if pred is not None else true)[i]), fontsize=9)
    if pred is not None and true is not None:
        n_wrong = int((pred[:count] != true[:count]).sum())
        heading = f"predicted (true); {n_wrong} of {count} wrong, in red"
    else:
        heading = (
            "predicted" if pred is not None else "true" if true is not None else ""
        )
    if heading:
        fig.suptitle(heading, fontsize=10)
    return save_png(fig, path, dpi)


def plot_first_layer(
    W: Any,
    path: str | os.PathLike[str],
    image_shape: tuple[int, int] | None = None,
    n: int | None = None,
    *,
    order: str = "C",
    cmap: str = "gray",
    figsize: tuple[float, float] = (8.0, 8.0),
    dpi: float = 100,
) -> Path:
    """Draw first-layer weights as images, one per hidden unit (ex4's picture).

    Parameters
    ----------
    W : array_like of shape (n_inputs, n_hidden) or (F, C, KH, KW), or a model
        The first Dense layer's weights (bpnet's layout: column j holds the
        input weights of hidden unit j), or the model that holds them: a
        ``bpnet.Sequential`` (its first layer with a weight ``W``, copied to
        the host) or a fitted estimator with ``coefs_`` (bpnet's or
        scikit-learn's MLP: ``coefs_[0]``). Each column is scaled to its own
        range. For an ex4 ``Theta1`` of shape (n_hidden, 1 + n_inputs), pass
        ``Theta1[:, 1:].T``. A ``Conv2D``'s weights draw each filter as a
        KHxKW image, one per input channel (F * C images, filter after
        filter); ``n`` then counts filters and ``image_shape`` is not used.
    path : path-like
        Where to write the PNG; its directory must exist.
    image_shape : (int, int), optional
        (height, width) of one input image; inferred as square when None.
    n : int, optional
        How many hidden units to draw (the first ``n``); all when None.
    order : {"C", "F"}, default="C"
        How a column unravels into an image ("F" for ex4's column-major data).
    cmap : str, default="gray"
        A matplotlib colormap name.
    figsize : (float, float), default=(8, 8)
        Inches.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    Path
        ``path``.
    """
    arr = as_host(_first_weights(W), "W")
    filters = arr.ndim == 4
    if filters:  # (F, C, KH, KW) -> one column per filter and channel
        F, C, KH, KW = arr.shape
        arr = arr.reshape(F * C, KH * KW).T
        image_shape = (KH, KW)
    elif arr.ndim != 2:
        raise ValueError(
            f"W: expected a 2-D weight matrix (n_inputs, n_hidden) or a Conv2D's "
            f"(filters, channels, height, width), got shape {arr.shape}"
        )
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"W: expected numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("W: contains NaN or Inf; the weights cannot be drawn")
    n_hidden = arr.shape[1]
    if n is None:
        n = n_hidden
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected an integer >= 1 or None, got {n!r}")
    count = min(int(n) * (C if filters else 1), n_hidden)
    images, shape = as_images(arr.T[:count], "W.T", image_shape, order)
    size, dpi = check_figsize(figsize, dpi, (8.0, 8.0))
    fig = new_figure(size, dpi)
    fig.subplots_adjust(
        left=0.02, right=0.98, bottom=0.02, top=0.93, wspace=0.05, hspace=0.05
    )
    for img, ax in zip(images, image_axes(fig, count)):
        ax.imshow(img, cmap=cmap, interpolation="nearest")
    if filters:
        title = (
            f"Convolution filters: {count // C} of {F} filters x {C} channel"
            f"{'s' if C > 1 else ''}, {KH}x{KW} each"
        )
    else:
        title = (
            f"First-layer weights: {count} of {n_hidden} hidden units, "
            f"{shape[0]}x{shape[1]} inputs each"
        )
    fig.suptitle(title, fontsize=11)
    return save_png(fig, path, dpi)


def _first_weights(W: Any) -> Any:
    """The first-layer weight matrix of a network or a fitted estimator; an
    array passes as it is."""
    if hasattr(W, "layers") and hasattr(W, "backend"):  # a bpnet.Sequential
        for layer in W.layers:
            if "W" in getattr(layer, "param_names", ()):
                if getattr(layer, "W", None) is None:
                    break
                return W.backend.to_numpy(layer.W)
        raise ValueError(
            f"W: the network {type(W).__name__} has no built layer with weights W "
            "(a Dense layer, built by its input width or a first forward)"
        )
    if hasattr(W, "fit") and hasattr(W, "predict"):  # an estimator
        try:
            return W.coefs_[0]
        except AttributeError:
            raise ValueError(
                f"W: the {type(W).__name__} is not fitted, so it has no weights to "
                "draw; fit it first"
            ) from None
    return W


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    *,
    normalize: str | None = None,
    cmap: str = "Blues",
    figsize: tuple[float, float] = (7.0, 6.0),
    dpi: float = 100,
) -> Path:
    """Draw the confusion matrix with scikit-learn's ConfusionMatrixDisplay.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n_samples,)
        True and predicted class labels.
    path : path-like
        Where to write the PNG; its directory must exist.
    class_names : sequence of str, optional
        Names for labels 0..k-1; every class gets a row and column even when
        absent from the data. Without it, the labels present are used.
    normalize : {"true", "pred", "all"}, optional
        As in :func:`sklearn.metrics.confusion_matrix`.
    cmap : str, default="Blues"
        A matplotlib colormap name.
    figsize : (float, float), default=(7, 6)
        Inches.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    Path
        ``path``.
    """
    try:
        from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix
    except ImportError as exc:
        raise ImportError(
            "plot_confusion_matrix needs scikit-learn; install it with: "
            "pip install 'bpnet-arrayapi[train]'"
        ) from exc
    names = check_class_names(class_names)
    k = None if names is None else len(names)
    true = check_labels(y_true, "y_true", None, k)
    pred = check_labels(y_pred, "y_pred", true.shape[0], k)
    if true.size == 0:
        raise ValueError("y_true: expected at least one label, got none")
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(
            f"normalize: expected None, 'true', 'pred' or 'all', got {normalize!r}"
        )
    labels = np.arange(k) if k is not None else np.union1d(true, pred)
    cm = confusion_matrix(true, pred, labels=labels, normalize=normalize)
    size, dpi = check_figsize(figsize, dpi, (7.0, 6.0))
    fig = new_figure(size, dpi)
    fig.set_layout_engine("constrained", w_pad=0.08, h_pad=0.08)
    ax = fig.subplots()
    display = ConfusionMatrixDisplay(
        cm, display_labels=names if names is not None else labels
    )
    rotate = names is not None and max(len(s) for s in names) > 3
    display.plot(
        ax=ax,
        cmap=cmap,
        colorbar=True,
        xticks_rotation=45 if rotate else "horizontal",
        values_format=".2f" if normalize else None,
    )
    accuracy = float((true == pred).mean())
    ax.set_title(f"Confusion matrix ({true.size} samples, accuracy {accuracy:.2%})")
    return save_png(fig, path, dpi)
