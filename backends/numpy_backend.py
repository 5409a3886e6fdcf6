"""NumPy on the host CPU: the reference backend."""

from __future__ import annotations

from typing import Any

import array_api_compat.numpy as xp_numpy
import numpy as np

from backends._base import Backend, DeviceRandom


class _NumPyRandom(DeviceRandom):
    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        # Generator.random draws float32 natively: no float64 temporary.
        return self._host.random(shape, dtype=np.dtype(self.backend.dtype_name(dtype)))


class NumPyBackend(Backend):
    library = "numpy"

    def __init__(self) -> None:
        self.xp = xp_numpy
        self.device = "cpu"
        self.name = "cpu"

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        return np.asarray(host, dtype=dt)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def _same_library(self, xp: Any) -> bool:
        return array_api_compat_is_numpy(xp)

    def random(self, seed: int | None = 0) -> DeviceRandom:
        return _NumPyRandom(self, seed)

    def errstate(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")

    def describe(self) -> str:
        blas = ""
        try:
            from threadpoolctl import threadpool_info

            libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
            # numpy's own BLAS first (scipy may bring a second one)
            libs.sort(key=lambda i: "numpy" not in str(i.get("filepath", "")))
            if libs:
                blas = f", {libs[0].get('internal_api')} {libs[0].get('version')}"
        except Exception:  # threadpoolctl is optional
            pass
        return f"NumPy {np.__version__} on the CPU{blas}"


def array_api_compat_is_numpy(xp: Any) -> bool:
    import array_api_compat

    return array_api_compat.is_numpy_namespace(xp)
