"""CuPy on a CUDA GPU.

array-api-compat ignores ``device=`` in CuPy creation functions, so every
creation and computation happens inside ``cupy.cuda.Device(n)``: ``context()``
gives that, and bpnet enters it around all of its work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends._base import Backend, BackendUnavailableError, DeviceRandom

INSTALL_HINT = (
    "install CuPy with: pip install 'bpnet-arrayapi[cuda]' "
    "(CUDA 12; for CUDA 13: pip install cupy-cuda13x)"
)


def cuda_device_count() -> int:
    """Number of CUDA devices CuPy sees; 0 when CuPy, the driver or a GPU is missing."""
    try:
        import cupy
    except Exception:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


class _CuPyRandom(DeviceRandom):
    def __init__(self, backend: CuPyBackend, seed: int | None) -> None:
        self.backend = backend
        with backend.context():
            self._gen = backend._cupy.random.default_rng(seed)

    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        with self.backend.context():
            return self._gen.random(shape, dtype=dtype)


class CuPyBackend(Backend):
    library = "cupy"

    def __init__(self, index: int = 0) -> None:
        try:
            import array_api_compat.cupy as xp_cupy
            import cupy
        except ImportError as exc:
            raise BackendUnavailableError(
                f"device: 'cuda' needs CuPy, which is not installed; {INSTALL_HINT}"
            ) from exc
        count = cuda_device_count()
        if count == 0:
            raise BackendUnavailableError(
                "device: 'cuda' asked for a CUDA GPU, but no CUDA device answered "
                "(no GPU, or no NVIDIA driver); use --device cpu"
            )
        if not 0 <= index < count:
            raise BackendUnavailableError(
                f"device: 'cuda:{index}' does not exist; this machine has {count} "
                f"CUDA device(s): cuda:0 .. cuda:{count - 1}"
            )
        self._cupy = cupy
        self.xp = xp_cupy
        self.device = cupy.cuda.Device(index)
        self.index = index
        self.name = f"cuda:{index}"

    def _same_library(self, xp: Any) -> bool:
        import array_api_compat

        return array_api_compat.is_cupy_namespace(xp)

    def context(self):
        return self._cupy.cuda.Device(self.index)

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        with self.context():
            return self._cupy.asarray(host, dtype=dt)

    def to_numpy(self, array: Any) -> np.ndarray:
        with self.context():
            return self._cupy.asnumpy(array)

    def synchronize(self) -> None:
        self.device.synchronize()

    def random(self, seed: int | None = 0) -> DeviceRandom:
        return _CuPyRandom(self, seed)

    @property
    def is_gpu(self) -> bool:
        return True

    def describe(self) -> str:
        cupy = self._cupy
        props = cupy.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        if isinstance(name, bytes):
            name = name.decode()
        mem = props["totalGlobalMem"] / 2**30
        return f"CuPy {cupy.__version__} on {name} ({mem:.0f} GiB), {self.name}"
