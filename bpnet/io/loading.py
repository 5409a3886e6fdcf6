"""``load`` and the checkpoint readers: a model file's arrays checked
against what its kind declares, within a memory budget, before any of them
is unpacked; then the model rebuilt by its kind's loader."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from backends import get_backend
from bpnet.io.atomic import check_path
from bpnet.io.budget import memory_budget, over_budget
from bpnet.io.classes import _classes_problem, _n_outputs
from bpnet.io.kinds import _kind_named
from bpnet.io.load_checks import _load_bytes, _same_arrays
from bpnet.io.model_format import MAX_BYTES, MAX_ELEMENTS, ModelFileError, _fail
from bpnet.io.model_read import _resolve, read_model_file
from bpnet.io.saving import STATE_PREFIX

# check_state(metadata, state, parameters, other arrays): see load_checkpoint
StateCheck = Callable[[dict, dict, dict, dict], None]


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
        model = _kind_named(name).loader(payload, meta, backend, dtype)
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
