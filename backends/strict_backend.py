"""array-api-strict: a CPU stand-in for a GPU that refuses every shortcut.

Its ``device1`` refuses ``numpy.asarray`` and mixing devices exactly as CuPy
does, so code that passes here does not touch the host by accident.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends._base import Backend

DEVICE_NAMES = ("device1", "CPU_DEVICE", "device2", "no_float64", "no_x64")


class StrictBackend(Backend):
    library = "array-api-strict"

    def __init__(self, device: str = "device1") -> None:
        import array_api_strict

        if device.lower() in ("cpu", "cpu_device"):
            device = "CPU_DEVICE"
        if device not in DEVICE_NAMES:
            raise ValueError(
                f"device: expected 'array-api-strict' or 'array-api-strict:NAME' "
                f"with NAME one of {', '.join(DEVICE_NAMES)}; got "
                f"'array-api-strict:{device}'"
            )
        self.xp = array_api_strict
        self.device = array_api_strict.Device(device)
        self.name = f"array-api-strict:{device}"
        self._cpu = array_api_strict.Device("CPU_DEVICE")

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        host = np.asarray(host)
        if dt is None and host.dtype == np.float64 and not self.supports("float64"):
            dt = self.xp.float32
        return self.xp.asarray(host, dtype=dt, device=self.device)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array.to_device(self._cpu))

    def errstate(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")

    def describe(self) -> str:
        return f"array-api-strict {self.xp.__version__} on {self.device!r}"
