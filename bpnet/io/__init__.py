"""Saving and loading models: files that are safe to load from strangers and
survive crashes.

A model file is a NumPy ``.npz`` archive read without pickle, plus a JSON
metadata document (see ``bpnet.io.modelfile`` for the layout and the checks).
Writes are atomic: a crash leaves the previous file whole. Every problem with
a file's contents raises ``ModelFileError`` (a ``ValueError``) naming the file
and what is wrong; a missing file raises the usual ``FileNotFoundError``.

>>> import bpnet, bpnet.io
>>> net = bpnet.Sequential([bpnet.Dense(4, 8), bpnet.ReLU(), bpnet.Dense(8, 3)])
>>> path = bpnet.io.save(net, "model.npz", classes=["a", "b", "c"])  # doctest: +SKIP
>>> same = bpnet.io.load(path, device="cpu")  # doctest: +SKIP

What is stored for an object is decided by its *kind*: ``Sequential`` is
built in, and other model types plug in with ``register_kind``.

A checkpoint is a model file with training state added: arrays under
``extra_arrays`` (stored as ``"state/NAME"``) and a JSON ``training`` dict::

    scalars, state = optimizer.state_dict()
    save(net, "ckpt.npz",
         extra_arrays={f"{k}/{i}": a for k, v in state.items()
                       for i, a in enumerate(v)},
         training={"epoch": epoch, "optimizer": scalars, "history": history})
    net, arrays, training = load_checkpoint("ckpt.npz", device="cuda")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import get_backend
from bpnet.io.atomic import atomic_write_bytes, atomic_write_text, check_path
from bpnet.io.classes import _check_classes, _classes_problem, _n_outputs
from bpnet.io.load_checks import _load_bytes, _same_arrays
from bpnet.io.modelfile import (
    FORMAT_VERSION,
    MAX_BYTES,
    MAX_ELEMENTS,
    MAX_MEMORY,
    ModelFileError,
    _check_name,
    _fail,
    _resolve,
    file_to_write,
    memory_budget,
    over_budget,
    read_model_file,
    write_model_file,
)
from bpnet.io.sequential import (
    sequential_arrays,
    sequential_from_arrays,
    sequential_to_arrays,
)
from bpnet.nn.model import Sequential

__all__ = [
    "FORMAT_VERSION",
    "MAX_MEMORY",
    "ModelFileError",
    "atomic_write_bytes",
    "atomic_write_text",
    "load",
    "load_checkpoint",
    "memory_budget",
    "read_checkpoint",
    "read_model_file",
    "register_kind",
    "save",
    "sequential_arrays",
    "sequential_from_arrays",
    "sequential_to_arrays",
    "write_model_file",
]

STATE_PREFIX = "state/"

Saver = Callable[[Any], tuple[dict[str, np.ndarray], dict[str, Any]]]
Loader = Callable[[dict[str, np.ndarray], dict[str, Any], Any, Any], Any]
Shapes = dict[str, tuple[int, ...]]
ArraysOf = Callable[[dict[str, Any]], tuple[Shapes, Shapes]]
# check_state(metadata, state, parameters, other arrays): see load_checkpoint
StateCheck = Callable[[dict, dict, dict, dict], None]


@dataclass(frozen=True)
class _Kind:
    name: str
    types: tuple[type, ...]
    saver: Saver
    loader: Loader
    arrays: ArraysOf | None = None


_KINDS: dict[str, _Kind] = {}

# bpnet's own kinds that live in modules with heavier dependencies, imported
# on first use. The module names are fixed here, never read from a file.
_LAZY_KINDS = {
    "MLPClassifier": "bpnet.sklearn.classifier",
    "MLPRegressor": "bpnet.sklearn.regressor",
}


def _ensure_kind(name: Any) -> None:
    if isinstance(name, str) and name not in _KINDS and name in _LAZY_KINDS:
        import importlib

        importlib.import_module(_LAZY_KINDS[name])


def register_kind(
    name: str,
    saver: Saver,
    loader: Loader,
    *,
    types: type | tuple[type, ...],
    arrays: ArraysOf | None = None,
) -> None:
    """Teach ``save`` and ``load`` a model type.

    Parameters
    ----------
    name : str
        Stored as the file's ``"kind"``; ``load`` picks the loader by it (and
        by nothing else in the file: no module is imported from a file).
    saver : callable
        ``saver(obj) -> (arrays, metadata)``: host NumPy arrays (names without
        the ``"state/"`` prefix) and a JSON-ready dict describing ``obj``.
    loader : callable
        ``loader(arrays, metadata, backend, dtype) -> obj``: rebuilds the
        object on ``backend`` (a ``backends.Backend``); ``dtype`` is None
        (keep the saved one) or what the caller asked for. It raises
        ``ModelFileError`` (or ``ValueError``/``TypeError``/``KeyError``,
        which ``load`` turns into one) when the contents do not fit.
    types : type or tuple of types
        ``save`` uses this kind for instances of these types and their
        subclasses (the most specific registered type wins).
    arrays : callable, optional
        ``arrays(metadata) -> (parameters, others)``: the arrays a file of
        this kind holds, each a dict {name: shape}, computed from the
        metadata alone (raising ``ModelFileError`` when it describes nothing
        valid): those of the model's parameters, in their order, and any
        other arrays it keeps (running statistics, say). With it, a file
        whose arrays differ in name or shape is refused before any of them
        is unpacked; without it, only the size limits bound what is read.

    Registering a name again replaces the earlier entry.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, got {name!r}")
    for what, fn in (("saver", saver), ("loader", loader)):
        if not callable(fn):
            raise TypeError(f"{what}: expected a callable, got {fn!r}")
    types = types if isinstance(types, tuple) else (types,)
    if not types or not all(isinstance(t, type) for t in types):
        raise TypeError(f"types: expected a class or a tuple of classes, got {types}")
    if arrays is not None and not callable(arrays):
        raise TypeError(f"arrays: expected a callable, got {arrays!r}")
    _KINDS[name] = _Kind(name, types, saver, loader, arrays)


def _kind_of(model: Any) -> _Kind:
    for cls in type(model).__mro__:
        for kind in reversed(_KINDS.values()):
            if cls in kind.types:
                return kind
    raise TypeError(
        f"model: expected one of the savable types "
        f"({', '.join(sorted(set(_KINDS) | set(_LAZY_KINDS)))}), "
        f"got {type(model).__name__}"
    )


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


def _kind_named(name: Any) -> _Kind:
    _ensure_kind(name)
    if not isinstance(name, str) or name not in _KINDS:
        raise ModelFileError(
            f"holds a model of kind {name!r:.60}, which this bpnet cannot rebuild "
            f"(known: {', '.join(sorted(_KINDS))}; is the module that registers "
            "it imported?)"
        )
    return _KINDS[name]


def _file_check(
    check_state: StateCheck | None,
    with_state: bool,
    budget: int | None = None,
    dtype: Any = None,
) -> Any:
    """The ``check`` of ``read_model_file`` for a model (and its state),
    refusing a file whose load would allocate more than ``budget`` bytes."""

    def check(meta: dict, headers: dict[str, tuple]) -> list[str]:
        kind = _kind_named(meta.get("kind"))
        if not isinstance(meta.get("training", {}), dict):
            raise ModelFileError("its 'training' metadata is not a JSON object")
        payload = {k: v for k, v in headers.items() if not k.startswith(STATE_PREFIX)}
        state = {
            k[len(STATE_PREFIX) :]: v
            for k, v in headers.items()
            if k.startswith(STATE_PREFIX)
        }
        params, rest = payload, {}
        if kind.arrays is not None:
            try:
                param_shapes, others = kind.arrays(meta)
            except ModelFileError:
                raise
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise ModelFileError(
                    f"does not describe a valid {kind.name}: {exc}"
                ) from exc
            _same_arrays(payload, param_shapes, others)
            params = {k: payload[k] for k in param_shapes}  # in their order
            rest = {k: payload[k] for k in others}
        if check_state is not None:
            check_state(meta, state, params, rest)
        names = list(headers) if with_state else list(payload)
        if budget is not None:
            need = _load_bytes({k: headers[k] for k in names}, payload, dtype)
            if need > budget:
                raise ModelFileError(over_budget("loading it", need, budget))
        return names

    return check


def load_checkpoint(
    path: str | os.PathLike[str],
    device: Any = None,
    dtype: Any = None,
    *,
    max_bytes: int = MAX_BYTES,
    max_elements: int = MAX_ELEMENTS,
    check_state: StateCheck | None = None,
    max_memory: int | str | None = None,
) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """Load a model and the training state saved with it.

    Parameters are those of ``load``, and:

    check_state : callable, optional
        ``check_state(metadata, state, params, others)``, called before any
        array is unpacked: ``state`` maps the names of the ``extra_arrays`` to
        their (shape, dtype), ``params`` does the same for the model's
        parameters in their order (all its arrays when its kind declares
        none), ``others`` for its other arrays (buffers), in order. It
        raises ``ModelFileError`` naming what does not fit, so a damaged or
        crafted checkpoint is refused before anything is built from it.

    Returns
    -------
    model : object
        As ``load`` returns it.
    extra_arrays : dict of str to numpy.ndarray
        The ``extra_arrays`` given to ``save``, by their names (without the
        ``"state/"`` prefix), as host arrays: copy them to the model's device
        with ``model.backend.asarray``.
    training : dict
        The ``training`` dict given to ``save`` ({} when there was none).
    """
    model, state, meta = _load(
        path, device, dtype, max_bytes, max_elements, check_state, True, max_memory
    )
    return model, state, meta.get("training", {})


def read_checkpoint(
    path: str | os.PathLike[str],
    device: Any = None,
    dtype: Any = None,
    *,
    check_state: StateCheck | None = None,
    max_bytes: int = MAX_BYTES,
    max_elements: int = MAX_ELEMENTS,
    max_memory: int | str | None = None,
) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """``load_checkpoint``, returning the whole metadata document (the
    ``training`` dict, the config, and any extra metadata given to ``save``)
    in place of ``training`` alone."""
    return _load(
        path, device, dtype, max_bytes, max_elements, check_state, True, max_memory
    )


def _load(
    path: Any,
    device: Any,
    dtype: Any,
    max_bytes: int,
    max_elements: int,
    check_state: StateCheck | None,
    with_state: bool,
    max_memory: int | str | None = None,
) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    budget = memory_budget(max_memory)
    backend = get_backend(device)
    if dtype is not None:
        backend.dtype(dtype)  # an unknown or unsupported dtype fails here
    path = _resolve(check_path(path))
    check = _file_check(check_state, with_state, budget, dtype)
    arrays, meta = read_model_file(path, max_bytes, max_elements, check=check)
    name = meta["kind"]  # a kind _file_check found registered
    payload = {k: v for k, v in arrays.items() if not k.startswith(STATE_PREFIX)}
    state = {
        k[len(STATE_PREFIX) :]: v
        for k, v in arrays.items()
        if k.startswith(STATE_PREFIX)
    }
    try:
        model = _KINDS[name].loader(payload, meta, backend, dtype)
    except ModelFileError as exc:
        if exc.path is not None:
            raise
        raise _fail(path, str(exc)) from exc
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _fail(path, f"does not describe a valid {name}: {exc}") from exc
    if "classes" in meta:  # what bpnet-predict names its predictions by
        problem = _classes_problem(meta["classes"], _n_outputs(model))
        if problem is not None:
            raise _fail(path, f"its metadata classes: {problem}")
    return model, state, meta


def load(
    path: str | os.PathLike[str],
    device: Any = None,
    dtype: Any = None,
    *,
    max_bytes: int = MAX_BYTES,
    max_elements: int = MAX_ELEMENTS,
    max_memory: int | str | None = None,
) -> Any:
    """Load a model saved with ``save``, rebuilt on ``device``.

    Parameters
    ----------
    path : str or os.PathLike
        The file; ``path + ".npz"`` is tried when ``path`` does not exist.
    device : str or Backend, default "cpu"
        Where the parameters go: ``"cpu"``, ``"cuda"``, ``"torch"``, ...
    dtype : {"float32", "float64"}, optional
        Default: the dtype the model was saved in.
    max_bytes, max_elements : int
        Size limits, see ``read_model_file``.
    max_memory : int or str, optional
        What the load may allocate, in bytes or as a size such as ``"8G"``:
        the arrays read, the network built and the weights copied into it,
        counted from the file's headers and metadata before any of it is
        allocated. Default: ``$BPNET_MAX_MEMORY``, else 2 GiB (``MAX_MEMORY``).

    Returns
    -------
    model : Sequential or a registered kind

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is damaged, unsafe, from a newer bpnet, or its arrays do
        not fit the network its config describes.
    backends.BackendUnavailableError
        ``device`` is not usable here, or cannot hold the dtype.
    """
    # the training state of a checkpoint is checked but never unpacked here
    return _load(path, device, dtype, max_bytes, max_elements, None, False, max_memory)[
        0
    ]


register_kind(
    "Sequential",
    sequential_to_arrays,
    sequential_from_arrays,
    types=Sequential,
    arrays=sequential_arrays,
)
