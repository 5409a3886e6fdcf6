"""mlx: refused, by name, with what it lacks.

mlx 0.32's arrays declare ``__array_namespace__``, but its creation functions
take ``stream=`` instead of the standard's ``device=`` and its arrays have no
``.device``; bpnet's layers use both (``xp.zeros(..., device=...)``,
``array_api_compat.device(x)``), and array-api-compat does not cover mlx. Until
one of them does, ``get_backend("mlx")`` says so instead of failing in a layer.
"""

from __future__ import annotations

from backends._base import BackendUnavailableError

INSTALL_HINT = (
    "install it with: pip install mlx (on Linux also mlx-cpu, which holds libmlx.so)"
)


def lacks(mx) -> list[str]:
    """What of the Array API that bpnet uses ``mx`` (``mlx.core``) lacks."""
    missing = []
    try:
        mx.zeros((1,), dtype=mx.float32, device=mx.cpu)
    except TypeError:
        missing.append("creation functions take stream=, not device=")
    if not hasattr(mx.zeros((1,), dtype=mx.float32), "device"):
        missing.append("arrays have no .device")
    return missing


def refuse(spec: str) -> BackendUnavailableError:
    """The error ``get_backend(spec)`` raises for mlx: why, in one line."""
    try:
        import mlx.core as mx
    except (ImportError, OSError) as exc:  # mlx without mlx-cpu: no libmlx.so
        return BackendUnavailableError(
            f"device: {spec!r} needs mlx, which is not importable here "
            f"({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        )
    missing = lacks(mx) or ["array-api-compat does not cover it"]
    return BackendUnavailableError(
        f"device: {spec!r} is not supported: mlx {mx.__version__} is not an "
        f"Array API library bpnet can run on ({'; '.join(missing)}); "
        f"use 'cpu' or 'torch'"
    )
