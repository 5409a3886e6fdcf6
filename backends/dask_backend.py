"""dask.array: refused, by name, with what it lacks.

array-api-compat covers dask (``array_api_compat.dask.array``), and a network's
forward pass and predictions come out right on it. Training does not: dask
arrays have no in-place operators (``W -= step`` makes a new array and leaves
the parameter as it was), so a fit would run and change nothing, and every
step would add to a lazy task graph that is computed only when a loss is read.
``get_backend("dask")`` says so instead of training silently.
"""

from __future__ import annotations

from backends._base import BackendUnavailableError

INSTALL_HINT = "install it with: pip install 'dask[array]'"


def refuse(spec: str) -> BackendUnavailableError:
    """The error ``get_backend(spec)`` raises for dask: why, in one line."""
    try:
        import array_api_compat.dask.array  # noqa: F401
        import dask
    except ImportError as exc:
        return BackendUnavailableError(
            f"device: {spec!r} needs dask, which is not importable here "
            f"({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        )
    return BackendUnavailableError(
        f"device: {spec!r} is not supported: dask {dask.__version__} arrays are "
        f"lazy and have no in-place operators, so fit's parameter updates would "
        f"be lost; train on 'cpu' (dask can still load the data: pass "
        f"X.compute())"
    )
