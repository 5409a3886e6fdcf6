"""``save``: a model, and the training state of a checkpoint, to a model file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.io.classes import _check_classes
from bpnet.io.kinds import _kind_of
from bpnet.io.model_format import _check_name
from bpnet.io.modelfile import file_to_write, write_model_file

# the prefix of a checkpoint's training-state arrays in a model file
STATE_PREFIX = "state/"


def _to_host(x: Any, backend: Any, what: str) -> np.ndarray:
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    if backend is not None and backend.owns(x):
        return backend.to_numpy(x)
    raise TypeError(
        f"{what}: expected a NumPy array or an array on the model's device, "
        f"got {type(x).__module__}.{type(x).__name__}"
    )


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    extra_arrays: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    **extra_metadata: Any,
) -> Path:
    """Save ``model`` to a model file, atomically.

    Parameters
    ----------
    model : Sequential or a registered kind
    path : str or os.PathLike
        ``.npz`` is appended when the name has another suffix (or none). An
        existing file is replaced only once the new one is complete.
    extra_arrays : dict of str to array, optional
        Training state to resume from (e.g. optimizer moments): NumPy arrays
        or arrays on the model's device, stored as ``"state/NAME"``.
    training : dict, optional
        JSON-ready training state (epoch, optimizer scalars, history).
    **extra_metadata
        More JSON-ready metadata, e.g. ``classes=["T-shirt", ...]`` (a list
        of labels, checked) or ``description="..."``.

    Returns
    -------
    Path
        The file written.
    """
    path = file_to_write(path, "path", "model.npz")
    kind = _kind_of(model)
    arrays, metadata = kind.saver(model)
    arrays, metadata = dict(arrays), {"kind": kind.name, **metadata}
    clash = sorted(set(extra_metadata) & (set(metadata) | {"training"}))
    if clash:
        raise ValueError(
            f"extra metadata: the keys {clash} are used by the {kind.name} model "
            "file itself; rename them"
        )
    if "classes" in extra_metadata:
        extra_metadata["classes"] = _check_classes(extra_metadata["classes"], model)
    metadata.update(extra_metadata)
    if training is not None:
        if not isinstance(training, dict):
            raise TypeError(f"training: expected a dict, got {training!r:.60}")
        metadata["training"] = training
    if extra_arrays is not None:
        if not isinstance(extra_arrays, dict):
            raise TypeError(
                f"extra_arrays: expected a dict of name -> array, got "
                f"{type(extra_arrays).__name__}"
            )
        backend = getattr(model, "backend", None)
        for name, arr in extra_arrays.items():
            key = STATE_PREFIX + _check_name(name, "extra_arrays")
            arrays[key] = _to_host(arr, backend, f"extra_arrays[{name!r}]")
    return write_model_file(path, arrays, metadata)
