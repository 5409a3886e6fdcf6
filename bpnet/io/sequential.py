"""How a ``Sequential`` is stored: its parameters and buffers as numbered
host arrays, its config in the metadata, and the shapes checked from the
config alone before anything is built."""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnet.io.modelfile import ModelFileError
from bpnet.nn.layers import declared_shapes, layer_from_config
from bpnet.nn.model import Sequential

MAX_LAYERS = 10_000


def sequential_to_arrays(net: Sequential) -> tuple[dict[str, np.ndarray], dict]:
    """``Sequential`` -> ({"param_0": W1, "param_1": b1, ..., "buffer_0": ...},
    {"config", "dtype"}).

    The arrays are host copies of ``net.parameters()`` and ``net.buffers()``
    (running statistics), in the model's dtype.
    """
    if not isinstance(net, Sequential):
        raise TypeError(f"net: expected a bpnet.Sequential, got {type(net).__name__}")
    net.check_rebuildable("save")  # a file that could not be loaded is lost work
    arrays = {
        f"param_{i}": net.backend.to_numpy(p) for i, p in enumerate(net.parameters())
    }
    for i, b in enumerate(net.buffers()):
        arrays[f"buffer_{i}"] = net.backend.to_numpy(b)
    return arrays, {"config": net.get_config(), "dtype": net.dtype_name}


def _config_shapes(config: Any) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """The parameter and buffer shapes a config describes, checked to chain;
    computed from the layers' configs without building any array, so an
    absurd config costs nothing. A config naming an unknown layer raises
    ValueError.
    """
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        raise ModelFileError("its metadata has no network config with a layer list")
    if len(layers) > MAX_LAYERS:
        raise ModelFileError(
            f"config layers: {len(layers)} layers, more than the {MAX_LAYERS} a "
            "model file may describe"
        )
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("type"), str):
            raise ModelFileError(
                f"config layers[{i}]: expected a layer config (a JSON object with "
                f"a 'type'), got {layer!r:.60}"
            )
    built = [layer_from_config(c) for c in layers]
    width = config.get("n_in")
    if width is None:
        width = built[0].n_in
    if width is None:
        raise ModelFileError(
            f"its config's first layer is {layers[0].get('type')!r:.40}, not Dense, "
            "and the config gives no n_in"
        )
    if type(width) is not int or width <= 0:
        raise ModelFileError(f"its config's n_in is {width!r:.40}, not a width")
    try:
        declared = declared_shapes(built, width)
    except ValueError as exc:  # "layers[i]: ..."
        raise ModelFileError(f"config {exc}") from None
    shapes = [tuple(s) for _, params, _ in declared for s in params.values()]
    buffers = [tuple(s) for _, _, bufs in declared for s in bufs.values()]
    return shapes, buffers


def _numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(n)]


def sequential_arrays(metadata: dict[str, Any]) -> tuple[dict, dict]:
    """The arrays a ``Sequential`` file holds, from its config alone (so an
    absurd config costs nothing): ({name: shape} of its parameters in order,
    {name: shape} of its buffers)."""
    shapes, buffers = _config_shapes(metadata.get("config"))
    params = dict(zip(_numbered("param", len(shapes)), shapes))
    return params, dict(zip(_numbered("buffer", len(buffers)), buffers))


def sequential_from_arrays(
    arrays: dict[str, np.ndarray],
    metadata: dict[str, Any],
    device: Any = "cpu",
    dtype: Any = None,
) -> Sequential:
    """Rebuild a ``Sequential`` from ``sequential_to_arrays``' output.

    The config's layers must chain and ``arrays`` must be exactly
    ``param_0 .. param_{N-1}`` (and ``buffer_0 ..`` for the layers that keep
    state) with the shapes the config gives; otherwise ``ModelFileError``.
    ``dtype=None`` keeps the saved dtype.
    """
    config = metadata.get("config")
    shapes, buffer_shapes = _config_shapes(config)
    names = _numbered("param", len(shapes))
    buffer_names = _numbered("buffer", len(buffer_shapes))
    if set(arrays) != set(names) | set(buffer_names):
        needed = f"the {len(names)} arrays param_0..param_{len(names) - 1}"
        if buffer_names:
            needed += f" and buffer_0..buffer_{len(buffer_names) - 1}"
        raise ModelFileError(
            f"its config needs {needed}, the file has {sorted(arrays)[:10]}"
        )
    for name, shape in zip(names + buffer_names, shapes + buffer_shapes):
        arr = arrays[name]
        if arr.shape != shape or arr.dtype.kind != "f":
            raise ModelFileError(
                f"array {name!r} is {arr.dtype} of shape {arr.shape}, but the "
                f"config needs floating point of shape {shape}"
            )
    saved = metadata.get("dtype", config.get("dtype"))
    if saved not in ("float32", "float64"):
        raise ModelFileError(f"unknown dtype {saved!r:.40} in its metadata")
    net = Sequential.from_config(config, device=device, dtype=dtype or saved)
    if net.shapes != shapes:  # pragma: no cover - _config_shapes mirrors _build
        raise ModelFileError(f"the rebuilt network has shapes {net.shapes}")
    net.set_parameters([arrays[name] for name in names])
    net.set_buffers([arrays[name] for name in buffer_names])
    return net
