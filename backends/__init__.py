"""Where arrays live: pick an array library and a device by name.

>>> import backends
>>> be = backends.get_backend("cpu")
>>> be.name
'cpu'

Names: ``cpu`` (NumPy), ``cuda`` / ``cuda:N`` (CuPy), ``torch`` / ``torch:cuda``
/ ``torch:cuda:N`` (PyTorch), ``jax`` / ``jax:cpu`` / ``jax:gpu`` / ``jax:N``
(JAX), ``array-api-strict`` (its ``device1``) or ``array-api-strict:NAME``
(``CPU_DEVICE``, ``device2``, ``no_float64``), ``dpnp`` / ``dpnp:gpu`` /
``dpnp:cpu`` / ``dpnp:N`` (dpnp on a SYCL device), and ``ndonnx``, whose arrays
record an ONNX graph (``bpnet.export_onnx``). ``mlx`` and ``dask`` are known
names that are refused with what they lack.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from backends._base import Backend, BackendUnavailableError, DeviceRandom, HostRandom

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "DeviceRandom",
    "HostRandom",
    "available_backends",
    "backend_of",
    "get_backend",
]

KNOWN = (
    "'cpu', 'cuda', 'cuda:N', 'torch', 'torch:cuda', 'jax', 'jax:gpu', 'jax:N', "
    "'array-api-strict', 'dpnp', 'dpnp:gpu'"
)

#: Other spellings of a device, and the name each stands for
ALIASES = {"gpu": "cuda", "cupy": "cuda", "numpy": "cpu", "pytorch": "torch"}


def _parse_index(spec: str, text: str) -> int:
    if not text.isdigit():
        raise ValueError(
            f"device: expected one of {KNOWN}, got {spec!r} "
            f"(the part after ':' must be a GPU number)"
        )
    return int(text)


@functools.cache
def _make(spec: str) -> Backend:
    head, _, rest = spec.partition(":")
    if head == "cpu" and not rest:
        from backends.numpy_backend import NumPyBackend

        return NumPyBackend()
    if head == "cuda":
        from backends.cupy_backend import CuPyBackend

        return CuPyBackend(_parse_index(spec, rest) if rest else 0)
    if head == "torch":
        from backends.torch_backend import TorchBackend

        return TorchBackend(rest or "cpu")
    if head == "jax":
        from backends.jax_backend import JaxBackend

        return JaxBackend(rest)
    if head in ("array-api-strict", "array_api_strict", "strict"):
        try:
            import array_api_strict  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError(
                "device: 'array-api-strict' needs the array-api-strict package; "
                "install it with: pip install array-api-strict"
            ) from exc
        from backends.strict_backend import StrictBackend

        return StrictBackend(rest or "device1")
    if head in ("ndonnx", "onnx") and not rest:
        try:
            import ndonnx  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError(
                "device: 'ndonnx' needs the ndonnx package; install it with: "
                "pip install 'bpnet-arrayapi[onnx]'"
            ) from exc
        from backends.ndonnx_backend import NdonnxBackend

        return NdonnxBackend()
    if head == "dpnp":
        from backends.dpnp_backend import DpnpBackend

        return DpnpBackend(rest)
    if head == "mlx" and not rest:
        from backends.mlx_backend import refuse

        raise refuse(spec)
    if head == "dask" and not rest:
        from backends.dask_backend import refuse

        raise refuse(spec)
    raise ValueError(f"device: expected one of {KNOWN}, got {spec!r}")


def get_backend(spec: str | Backend | None = "cpu") -> Backend:
    """Return the backend named by ``spec``.

    Parameters
    ----------
    spec : str or Backend or None
        ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"torch"``,
        ``"torch:cuda[:N]"``, ``"jax[:cpu|:gpu[:N]|:N]"``,
        ``"array-api-strict[:DEVICE]"``, ``"dpnp[:gpu|:cpu|:N]"``, or a
        Backend, which is returned as is. ``"gpu"`` is another name for
        ``"cuda"`` (``"gpu:N"``, ``"torch:gpu"`` too; see ``ALIASES``): the
        same backend, and errors that say which name it stood for.

    Raises
    ------
    ValueError
        The name is not one bpnet knows.
    BackendUnavailableError
        The name is known but its library or device is missing here; the
        message says what to install or why no device answered.
    """
    if spec is None:
        spec = "cpu"
    if isinstance(spec, Backend):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"device: expected a name such as {KNOWN} or a Backend, "
            f"got {type(spec).__name__}"
        )
    spec = spec.strip().lower() if not spec.startswith("array") else spec.strip()
    name = _canonical(spec)
    if name == spec:
        return _make(spec)
    try:
        return _make(name)  # one instance for "gpu" and "cuda"
    except (ValueError, BackendUnavailableError) as exc:
        said = str(exc).removeprefix("device: ")
        raise type(exc)(f"device: {spec!r} (an alias of {name!r}): {said}") from None


def _canonical(spec: str) -> str:
    """``spec`` with an alias spelled as the name it stands for: "gpu" and
    "gpu:N" -> "cuda", "cuda:N"; "torch:gpu" -> "torch:cuda"; "numpy" ->
    "cpu"; "cupy" -> "cuda"; "pytorch" -> "torch"."""
    parts = spec.split(":")
    if parts[0] in ALIASES:
        parts[0] = ALIASES[parts[0]]
    if parts[0] == "torch" and len(parts) > 1 and parts[1] == "gpu":
        parts[1] = "cuda"
    return ":".join(parts)


def backend_of(array: Any, name: str = "x") -> Backend:
    """The backend whose library and device hold ``array`` (what a layer used
    on its own, outside a network, builds with).

    Parameters
    ----------
    array : array
        A NumPy, CuPy, PyTorch, JAX or array-api-strict array.
    name : str, default "x"
        The argument ``array`` came in, for the error messages.

    Raises
    ------
    TypeError
        ``array`` is not an array of a library bpnet has a backend for.
    """
    import array_api_compat as compat

    try:
        xp = compat.array_namespace(array)
    except TypeError:
        raise TypeError(
            f"{name}: expected an array (NumPy, CuPy, PyTorch, array-api-strict), "
            f"got {type(array).__name__}"
        ) from None
    dev = compat.device(array)
    if compat.is_numpy_namespace(xp):
        return get_backend("cpu")
    if compat.is_cupy_namespace(xp):
        return get_backend(f"cuda:{dev.id}")
    if compat.is_torch_namespace(xp):
        return get_backend("torch" if dev.type == "cpu" else f"torch:{dev}")
    if compat.is_jax_namespace(xp):
        import jax

        if dev == jax.devices()[0]:
            return get_backend("jax")
        kind = "gpu" if dev.platform in ("gpu", "cuda", "rocm") else dev.platform
        return get_backend(f"jax:{kind}:{jax.devices(dev.platform).index(dev)}")
    if compat.is_array_api_strict_namespace(xp):
        from backends.strict_backend import DEVICE_NAMES

        for device in DEVICE_NAMES:
            if xp.Device(device) == dev:
                return get_backend(f"array-api-strict:{device}")
    raise TypeError(
        f"{name}: bpnet has no backend for {xp.__name__} arrays; expected a NumPy, "
        "CuPy, PyTorch or array-api-strict array"
    )


def _usable(spec: str) -> bool:
    try:
        _make(spec)
    except Exception:
        return False
    return True


def available_backends() -> list[str]:
    """Names of the backends usable on this machine, probed without raising.

    CuPy installed without a driver or a GPU, and dpnp without a SYCL device,
    count as not available; mlx and dask never are (``get_backend`` says why).
    """
    names = ["cpu"]
    from backends.cupy_backend import cuda_device_count

    if cuda_device_count() > 0 and _usable("cuda"):
        names.append("cuda")
    for spec in ("torch", "torch:cuda", "jax", "jax:gpu", "array-api-strict"):
        if _usable(spec):
            names.append(spec)
    if importlib.util.find_spec("dpnp") is not None and _usable("dpnp"):
        names.append("dpnp")
    return names


def describe(spec: str | Backend | None = "cpu") -> str:
    """One-line description of a backend, for logs."""
    return get_backend(spec).describe()
