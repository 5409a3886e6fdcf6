"""PyTorch (CPU or CUDA) through array-api-compat."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends._base import Backend, BackendUnavailableError, DeviceRandom

#: PyTorch's own command for its CPU-only wheel (the README's, for machines
#: without a GPU: PyPI's Linux wheel pulls in gigabytes of CUDA libraries)
CPU_WHEEL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


class _TorchRandom(DeviceRandom):
    def __init__(self, backend: TorchBackend, seed: int | None) -> None:
        import torch

        self.backend = backend
        self._gen = torch.Generator(device=backend.device)
        self._gen.manual_seed(0 if seed is None else int(seed))

    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        import torch

        return torch.rand(
            shape, generator=self._gen, dtype=dtype, device=self.backend.device
        )

    def get_state(self) -> Any:
        return self._gen.get_state().tolist()

    def takes_state(self, state: Any) -> bool:
        # a CPU generator's state is 5056 bytes, a CUDA (Philox) one's 16
        return (
            isinstance(state, list)
            and len(state) == self._gen.get_state().numel()
            and all(type(v) is int for v in state)
        )

    def set_state(self, state: Any) -> None:
        import torch

        if state is not None:
            self._gen.set_state(torch.tensor(state, dtype=torch.uint8))


class TorchBackend(Backend):
    library = "torch"

    def __init__(self, device: str = "cpu") -> None:
        head, _, index = device.partition(":")
        if not (device == "cpu" or (head == "cuda" and (not index or index.isdigit()))):
            raise ValueError(
                f"device: expected 'torch', 'torch:cpu', 'torch:cuda' or "
                f"'torch:cuda:N', got 'torch:{device}'"
            )
        try:
            import array_api_compat.torch as xp_torch
            import torch
        except ImportError as exc:
            raise BackendUnavailableError(
                "device: 'torch' needs PyTorch, which is not installed; "
                "install it with: pip install 'bpnet-arrayapi[torch]' (PyPI's "
                "CUDA build, for --device torch:cuda), or on a machine without "
                f"an NVIDIA GPU the CPU-only wheel: {CPU_WHEEL}"
            ) from exc
        self._torch = torch
        if head == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailableError(
                    f"device: 'torch:{device}' asked for a CUDA GPU, but PyTorch "
                    "found none (torch.cuda.is_available() is False)"
                )
            dev = torch.device(device if index else "cuda:0")
            if dev.index >= torch.cuda.device_count():
                raise BackendUnavailableError(
                    f"device: 'torch:{device}' does not exist; this machine has "
                    f"{torch.cuda.device_count()} CUDA device(s)"
                )
        else:
            dev = torch.device("cpu")
        self.xp = xp_torch
        self.device = dev
        self.name = "torch" if dev.type == "cpu" else f"torch:{dev}"

    def _same_library(self, xp: Any) -> bool:
        import array_api_compat

        return array_api_compat.is_torch_namespace(xp)

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        if isinstance(host, np.ndarray):
            if not host.dtype.isnative:  # torch takes native byte order only
                host = host.astype(host.dtype.newbyteorder("="))
            t = self._torch.from_numpy(np.ascontiguousarray(host))
            return t.to(device=self.device, dtype=dt)
        if isinstance(host, self._torch.Tensor):
            host = self.plain(host)
        return self.xp.asarray(host, dtype=dt, device=self.device)

    def plain(self, array: Any) -> Any:
        return array.detach() if array.requires_grad else array

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.detach().cpu().numpy()

    def take_rows(self, x: Any, indices: Any) -> Any:
        # array-api-compat's take maps negative indices first (three more
        # tensor ops per call, three calls per step); these never are.
        return self._torch.index_select(x, 0, indices)

    def is_out_of_memory(self, exc: BaseException) -> bool:
        oom = getattr(self._torch, "OutOfMemoryError", MemoryError)
        return isinstance(exc, (MemoryError, oom))

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def random(self, seed: int | None = 0) -> DeviceRandom:
        return _TorchRandom(self, seed)

    @property
    def is_gpu(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> str:
        torch = self._torch
        if self.device.type == "cuda":
            p = torch.cuda.get_device_properties(self.device)
            return (
                f"PyTorch {torch.__version__} on {p.name} "
                f"({p.total_memory / 2**30:.0f} GiB)"
            )
        # the thread count decides small-step speed on a busy machine
        return (
            f"PyTorch {torch.__version__} on the CPU, "
            f"{torch.get_num_threads()} thread(s)"
        )
