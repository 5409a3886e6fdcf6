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

    def matmul_into(
        self, a: Any, b: Any, out: Any, alpha: float = 1.0, beta: float = 0.0
    ) -> Any:
        """BLAS ``gemm`` writing into ``out`` (C-ordered float32/64 of the
        operands' dtype); anything else takes the pure fallback."""
        gemm = _gemm(out.dtype.char)
        if (
            gemm is None
            or a.dtype != out.dtype
            or b.dtype != out.dtype
            or not out.flags.c_contiguous
            or out.shape != (a.shape[0], b.shape[1])
        ):
            return super().matmul_into(a, b, out, alpha, beta)
        if alpha == 1.0 and beta == 0.0:
            return np.matmul(a, b, out=out)
        # BLAS is column-major: out.T = alpha * b.T @ a.T + beta * out.T, and
        # out.T is column-major when out is row-major, so gemm writes in place.
        (A, ta), (B, tb) = _fortran(b.T), _fortran(a.T)
        c = gemm(alpha, A, B, beta=beta, c=out.T, trans_a=ta, trans_b=tb, overwrite_c=1)
        if not np.shares_memory(c, out):  # never expected: out is row-major
            out[...] = c.T
        return out

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


def _fortran(m: np.ndarray) -> tuple[np.ndarray, int]:
    """(array, trans) with ``op(array) == m`` and the array column-major, so
    BLAS reads it without a copy."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return np.asfortranarray(m), 0


_GEMM: dict[str, Any] = {}


def _gemm(char: str) -> Any:
    """SciPy's BLAS ``gemm`` for a dtype char ('f', 'd'), or None (other
    dtypes, or no SciPy: it comes with the ``train`` extra)."""
    if not _GEMM:
        try:
            from scipy.linalg import blas
        except ImportError:
            _GEMM.update(f=None, d=None)
        else:
            _GEMM.update(f=blas.sgemm, d=blas.dgemm)
    return _GEMM.get(char)


def array_api_compat_is_numpy(xp: Any) -> bool:
    import array_api_compat

    return array_api_compat.is_numpy_namespace(xp)
