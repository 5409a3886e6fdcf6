"""dpnp on a SYCL device (Intel GPUs, and CPUs through the OpenCL runtime).

dpnp follows the Array API itself (``dpnp.ndarray.__array_namespace__`` is
``dpnp``), so bpnet's math runs on it unchanged; this module picks the device
and says clearly when none answers. A device here is dpnp's ``Device`` (one
SYCL queue), so every array bpnet makes shares one queue.

Names: ``dpnp`` (dpctl's default device), ``dpnp:gpu``, ``dpnp:cpu``, ``dpnp:N``
(the N-th of ``dpctl.get_devices()``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from backends._base import Backend, BackendUnavailableError

INSTALL_HINT = "install it with: pip install 'bpnet-arrayapi[dpnp]'"


def icd_hint() -> str:
    """How to make the OpenCL CPU runtime (PyPI's ``intel-opencl-rt``) visible.

    Its wheel puts ``libintelocl.so`` in ``<prefix>/lib`` and an ICD file under
    ``<prefix>/etc/OpenCL/vendors``, where the OpenCL loader does not look (it
    reads ``/etc/OpenCL/vendors``, or ``OCL_ICD_FILENAMES``, when the process
    starts).
    """
    lib = os.path.join(sys.prefix, "lib", "libintelocl.so")
    if os.path.exists(lib):
        return f"the OpenCL CPU runtime is installed: export OCL_ICD_FILENAMES={lib}"
    return (
        "install the OpenCL CPU runtime (pip install intel-opencl-rt) and export "
        "OCL_ICD_FILENAMES=<prefix>/lib/libintelocl.so, or a GPU driver "
        "(Level Zero)"
    )


def _select(dpctl: Any, spec: str) -> Any:
    """The SYCL device named by ``spec`` ('', 'gpu', 'cpu' or a number)."""
    found = dpctl.get_devices()
    if not found:
        raise BackendUnavailableError(
            f"device: {DpnpBackend._label(spec)!r}: dpnp is installed but "
            f"no SYCL device answered (dpctl.get_devices() is empty); "
            f"{icd_hint()}"
        )
    if not spec:
        return dpctl.select_default_device()
    if spec.isdigit():
        index = int(spec)
        if index >= len(found):
            raise BackendUnavailableError(
                f"device: 'dpnp:{spec}' does not exist; dpctl lists "
                f"{len(found)} SYCL device(s): "
                + ", ".join(d.filter_string for d in found)
            )
        return found[index]
    kind = getattr(dpctl.device_type, spec)
    matches = [d for d in found if d.device_type == kind]
    if not matches:
        raise BackendUnavailableError(
            f"device: 'dpnp:{spec}' asked for a SYCL {spec.upper()}, but dpctl "
            f"lists only: " + ", ".join(d.filter_string for d in found)
        )
    return dpctl.select_gpu_device() if spec == "gpu" else dpctl.select_cpu_device()


class DpnpBackend(Backend):
    library = "dpnp"

    def __init__(self, device: str = "") -> None:
        if device not in ("", "gpu", "cpu") and not device.isdigit():
            raise ValueError(
                f"device: expected 'dpnp', 'dpnp:gpu', 'dpnp:cpu' or 'dpnp:N', "
                f"got 'dpnp:{device}'"
            )
        try:
            import dpnp
        except (ImportError, OSError) as exc:  # OSError: a runtime library
            raise BackendUnavailableError(
                f"device: {self._label(device)!r} needs dpnp, which is not "
                f"importable here ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
            ) from exc
        import dpctl  # dpnp imports it: present whenever dpnp is

        self._dpnp = dpnp
        self.sycl_device = _select(dpctl, device)
        self.xp = dpnp
        # dpnp's Device (one queue), as arrays report it: owns() compares these
        self.device = dpnp.empty(0, device=self.sycl_device).device
        self.name = self._label(device)

    @staticmethod
    def _label(device: str) -> str:
        return f"dpnp:{device}" if device else "dpnp"

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        if isinstance(host, np.ndarray) and not host.dtype.isnative:
            # dpnp copies the bytes as they are: big-endian floats would come
            # out as garbage
            host = host.astype(host.dtype.newbyteorder("="))
        return self.xp.asarray(host, dtype=dt, device=self.device)

    def to_numpy(self, array: Any) -> np.ndarray:
        return self._dpnp.asnumpy(array)

    def synchronize(self) -> None:
        self.device.sycl_queue.wait()

    def errstate(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")

    @property
    def is_gpu(self) -> bool:
        return self.sycl_device.is_gpu

    def describe(self) -> str:
        d = self.sycl_device
        return f"dpnp {self._dpnp.__version__} on {d.name.strip()} ({d.filter_string})"
