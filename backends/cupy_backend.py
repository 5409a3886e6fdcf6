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


class _Gemm:
    """cuBLAS ``gemm`` called through ctypes, for use inside graph capture.

    CuPy's ``matmul`` refuses to run while a stream is capturing (its cuBLAS
    wrapper checks and raises), though cuBLAS itself supports capture. Row-major
    ``C = A @ B`` is computed as column-major ``C^T = B^T A^T``; operands may be
    C-contiguous or transposed views of C-contiguous arrays.
    """

    def __init__(self, cupy: Any) -> None:
        import ctypes

        path = None
        with open("/proc/self/maps") as maps:
            for line in maps:
                name = line.rsplit("/", 1)[-1]
                if name.startswith("libcublas.so"):
                    path = line.split(None, 5)[-1].strip()
                    break
        if path is None:
            raise OSError("libcublas is not loaded")
        self._lib = ctypes.CDLL(path)
        self._ctypes = ctypes
        self._cupy = cupy

    def __call__(self, a: Any, b: Any, stream_ptr: int) -> Any:
        ct, cupy = self._ctypes, self._cupy
        m, k = a.shape
        n = b.shape[1]
        c = cupy.empty((m, n), dtype=a.dtype)
        if a.dtype == cupy.float32:
            fn, scalar = self._lib.cublasSgemm_v2, ct.c_float
        else:
            fn, scalar = self._lib.cublasDgemm_v2, ct.c_double
        op_b, ld_b = (0, n) if b.flags.c_contiguous else (1, k)
        op_a, ld_a = (0, k) if a.flags.c_contiguous else (1, m)
        handle = cupy.cuda.device.get_cublas_handle()
        self._lib.cublasSetStream_v2(ct.c_void_p(handle), ct.c_void_p(stream_ptr))
        one, zero = scalar(1.0), scalar(0.0)
        status = fn(
            ct.c_void_p(handle),
            op_b,
            op_a,
            n,
            m,
            k,
            ct.byref(one),
            ct.c_void_p(b.data.ptr),
            ld_b,
            ct.c_void_p(a.data.ptr),
            ld_a,
            ct.byref(zero),
            ct.c_void_p(c.data.ptr),
            n,
        )
        if status != 0:
            raise RuntimeError(f"cuBLAS gemm failed with status {status}")
        return c


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

    def get_state(self) -> Any:
        return None  # CuPy's generator state lives on the device, unexported

    def takes_state(self, state: Any) -> bool:
        return state is None

    def set_state(self, state: Any) -> None:
        pass


class CuPyBackend(Backend):
    library = "cupy"

    # cupyx.scipy.sparse (cuSPARSE): the first layer multiplies a CSR batch
    # as it is; a SciPy matrix's batch is copied over as a sparse matrix.
    # Not run by the test suite where no CUDA device answers.
    takes_sparse = True

    def is_sparse(self, x: Any) -> bool:
        return type(x).__module__.startswith("cupyx.scipy.sparse")

    def sparse_rows(self, X: Any, rows: Any, dtype: Any) -> Any:
        from cupyx.scipy import sparse as device_sparse

        part = X[rows] if isinstance(rows, slice) else X[rows, :]
        dt = np.dtype(self.dtype_name(dtype))
        with self.context():
            if not self.is_sparse(part):  # a SciPy matrix: its batch crosses
                part = device_sparse.csr_matrix(part.tocsr().astype(dt))
            return part.tocsr().astype(dt)

    def sparse_matmul(self, x: Any, W: Any) -> Any:
        with self.context():
            return x @ W

    def sparse_rmatmul(self, x: Any, dy: Any) -> Any:
        with self.context():
            return x.T @ dy

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

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return isinstance(exc, (MemoryError, self._cupy.cuda.memory.OutOfMemoryError))

    def synchronize(self) -> None:
        self.device.synchronize()

    def random(self, seed: int | None = 0) -> DeviceRandom:
        return _CuPyRandom(self, seed)

    @property
    def is_gpu(self) -> bool:
        return True

    supports_graphs = True
    graph_safe_random = True
    _capturing = False
    _gemm: Any = None

    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b``; inside graph capture through cuBLAS directly (see _Gemm)."""
        if not self._capturing:
            return a @ b
        if not (a.flags.c_contiguous or a.flags.f_contiguous):
            a = self._cupy.ascontiguousarray(a)
        if not (b.flags.c_contiguous or b.flags.f_contiguous):
            b = self._cupy.ascontiguousarray(b)
        return self._gemm(a, b, self._cupy.cuda.get_current_stream().ptr)

    def capture_graph(self, fn: Any) -> Any:
        """Record ``fn()``'s kernels into a CUDA graph; return its replayer.

        ``fn`` must do device work only (no host copies, no synchronization)
        and update persistent arrays in place. Its temporaries come from a
        private memory pool that lives as long as the graph, so no other
        allocation can take memory the graph writes on replay. Kernels must
        already be compiled (run ``fn`` once eagerly first).
        """
        cupy = self._cupy
        pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)
        mode = getattr(cupy.cuda.runtime, "streamCaptureModeRelaxed", None)
        with self.context():
            cupy.cuda.get_current_stream().synchronize()
            if self._gemm is None:
                self._gemm = _Gemm(cupy)
            with cupy.cuda.using_allocator(pool.malloc), stream:
                stream.begin_capture(*(() if mode is None else (mode,)))
                self._capturing = True
                try:
                    fn()
                finally:
                    self._capturing = False
                    graph = stream.end_capture()

        def replay() -> None:
            with self.context():
                # the graph's stream does not wait for the legacy stream
                cupy.cuda.get_current_stream().synchronize()
                graph.launch(stream)
                stream.synchronize()

        replay.resources = (graph, stream, pool)  # type: ignore[attr-defined]
        return replay

    def describe(self) -> str:
        cupy = self._cupy
        props = cupy.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        if isinstance(name, bytes):
            name = name.decode()
        mem = props["totalGlobalMem"] / 2**30
        return f"CuPy {cupy.__version__} on {name} ({mem:.0f} GiB), {self.name}"
