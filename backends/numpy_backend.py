"""NumPy on the host CPU: the reference backend."""

from __future__ import annotations

import functools
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

    #: ``matmul_into`` with ``beta != 0`` calls BLAS through ctypes only for
    #: outputs of at least this many elements: the call's own cost (about
    #: 3 us) is more than the pass over a smaller output that it saves, so
    #: those take NumPy's product and an in-place update (784 x 32 float32
    #: weights gain 1.4 us a step; 784 x 128 gain 13 us; 128 x 10 lose 2 us)
    fold_min_size = 16384

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

    def take_rows(self, x: Any, indices: Any) -> Any:
        # the method: numpy.take's Python wrapper costs about 0.8 us a call,
        # three calls a step
        return x.take(indices, axis=0)

    gathers_into = True
    host_scalars = True

    # scipy.sparse: the first layer multiplies a CSR batch as it is, so a
    # wide sparse X never becomes a dense batch (scipy is imported only when
    # a sparse matrix is met: the core needs only NumPy)
    takes_sparse = True

    def is_sparse(self, x: Any) -> bool:
        if isinstance(x, np.ndarray):
            return False
        from scipy import sparse

        return sparse.issparse(x)

    def sparse_rows(self, X: Any, rows: Any, dtype: Any) -> Any:
        part = X[rows] if isinstance(rows, slice) else X[rows, :]
        return part.tocsr().astype(np.dtype(self.dtype_name(dtype)), copy=False)

    def sparse_matmul(self, x: Any, W: Any) -> Any:
        return np.asarray(x @ W)

    def sparse_rmatmul(self, x: Any, dy: Any) -> Any:
        return np.asarray(x.T @ dy)

    #: row maxima over a transposed copy from this many rows up: NumPy reduces
    #: a short axis 1 row by row (13.5 us for 256 x 10 against 3.9 through
    #: the copy); on a few rows the copy costs more than it saves
    transpose_max_rows = 64

    def softmax_cross_entropy(self, Z: Any, T: Any) -> tuple[Any, Any]:
        """``SoftmaxCrossEntropy.loss_and_grad(Z, T)`` with no weights, bit
        for bit: the same operations in the same order, through ndarray
        methods and in place (NumPy's function wrappers cost about 1 us a
        call, a dozen calls a step). A maximum is exact whatever the order,
        so the row maxima may come from a transposed copy."""
        n = Z.shape[0]
        if n >= self.transpose_max_rows:
            m = Z.T.copy().max(axis=0)[:, None]
        else:
            m = Z.max(axis=1, keepdims=True)
        S = Z - m
        E = np.exp(S)
        s = E @ _ones_column(Z.shape[1], Z.dtype)
        loss = (np.log(s).sum() - (T * S).sum()) * (1.0 / n)
        E /= s
        E -= T
        E *= 1.0 / n
        return loss, E

    def take_rows_into(self, x: Any, indices: Any, out: Any) -> Any:
        # mode="wrap": with the default "raise" NumPy gathers into a temporary
        # and copies it over (so that a bad index leaves out untouched); these
        # indices are in range, and valid negative ones wrap as take's do
        if out.dtype != x.dtype or not out.flags.c_contiguous:
            return super().take_rows_into(x, indices, out)
        return x.take(indices, axis=0, out=out, mode="wrap")  # the method: no wrapper

    @property
    def folds_matmul_update(self) -> bool:  # type: ignore[override]
        return _numpy_gemm() is not None

    def matmul_into(
        self, a: Any, b: Any, out: Any, alpha: float = 1.0, beta: float = 0.0
    ) -> Any:
        """BLAS ``gemm`` writing into ``out`` (C-ordered float32/64 of the
        operands' dtype); anything else takes the pure fallback. NumPy's own
        BLAS where it can be reached (the one its ``matmul`` runs on), else
        SciPy's."""
        if (
            out.dtype.char not in "fd"
            or a.dtype != out.dtype
            or b.dtype != out.dtype
            or not out.flags.c_contiguous
            or out.shape != (a.shape[0], b.shape[1])
        ):
            return super().matmul_into(a, b, out, alpha, beta)
        if alpha == 1.0 and beta == 0.0:
            return np.matmul(a, b, out=out)
        if out.size < self.fold_min_size:
            return super().matmul_into(a, b, out, alpha, beta)
        own = _numpy_gemm()
        if own is not None and own(a, b, out, alpha, beta):
            return out
        gemm = _gemm(out.dtype.char)
        if gemm is None:
            return super().matmul_into(a, b, out, alpha, beta)
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


@functools.cache
def _ones_column(k: int, dtype: Any) -> np.ndarray:
    ones = np.ones((k, 1), dtype=dtype)
    ones.flags.writeable = False
    return ones


def _fortran(m: np.ndarray) -> tuple[np.ndarray, int]:
    """(array, trans) with ``op(array) == m`` and the array column-major, so
    BLAS reads it without a copy."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return np.asfortranarray(m), 0


def _row_major(m: np.ndarray) -> tuple[int, np.ndarray, int] | None:
    """(CBLAS trans flag, C-ordered array, leading dimension) through which
    row-major BLAS reads ``m`` without a copy: ``m`` itself, or the
    transpose of a C-ordered array; None for other strides."""
    if m.flags.c_contiguous:
        return 111, m, m.shape[1]
    if m.flags.f_contiguous:
        return 112, m.T, m.shape[0]
    return None


class _CblasGemm:
    """``cblas_?gemm`` of the BLAS that NumPy's ``matmul`` runs on (the
    OpenBLAS a NumPy wheel bundles, 64-bit integers), through ctypes.

    SciPy's wheels bundle another OpenBLAS build, whose products can be
    slower than NumPy's at the same shapes (18% at 784 x 2048 x 128 with
    SciPy 1.17's); a product folded into an update should cost what NumPy's
    own product costs.
    """

    def __init__(self, lib: Any) -> None:
        import ctypes as ct

        i, e, p = ct.c_int64, ct.c_int, ct.POINTER(ct.c_char)
        self.fns = {}
        for char, name, real in (
            ("f", "sgemm", ct.c_float),
            ("d", "dgemm", ct.c_double),
        ):
            fn = getattr(lib, f"scipy_cblas_{name}64_")
            fn.argtypes = [e, e, e, i, i, i, real, p, i, p, i, real, p, i]
            fn.restype = None
            self.fns[char] = fn
        self.at = ct.c_char.from_buffer  # a C-contiguous array's first byte
        self.at_address = ct.c_char.from_address
        self.byref = ct.byref

    def __call__(self, a: Any, b: Any, out: Any, alpha: float, beta: float) -> bool:
        """``out = alpha * a @ b + beta * out`` in place (``out`` C-ordered);
        False when not done (other dtypes, empty or strided operands)."""
        fn = self.fns.get(out.dtype.char)
        m, k = a.shape
        n = b.shape[1]
        if fn is None or not (m and n and k):
            return False
        la, lb = _row_major(a), _row_major(b)
        if la is None or lb is None:
            return False
        (ta, A, lda), (tb, B, ldb) = la, lb
        at, byref = self.at, self.byref
        try:  # the cheap way to a pointer: a view of the buffer, holding it
            pa, pb, pc = byref(at(A)), byref(at(B)), byref(at(out))
        except (TypeError, ValueError):  # a read-only operand
            pa, pb, pc = (byref(self.at_address(x.ctypes.data)) for x in (A, B, out))
        fn(101, ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, n)
        return True


@functools.cache
def _numpy_gemm() -> _CblasGemm | None:
    """NumPy's own BLAS ``gemm``, or None where it cannot be found (a NumPy
    not built with scipy-openblas64, as conda's): then SciPy's serves."""
    import ctypes
    from pathlib import Path

    root = Path(np.__file__).parent
    for lib in sorted(
        [
            *root.parent.glob("numpy.libs/*openblas64*"),
            *root.glob(".dylibs/*openblas64*"),
        ]
    ):
        try:
            return _CblasGemm(ctypes.CDLL(str(lib)))
        except (OSError, AttributeError):
            continue
    return None


@functools.cache
def _gemm(char: str) -> Any:
    """SciPy's BLAS ``gemm`` for a dtype char ('f', 'd'), or None (other
    dtypes, or no SciPy: it comes with the ``train`` extra)."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    return {"f": blas.sgemm, "d": blas.dgemm}.get(char)


def array_api_compat_is_numpy(xp: Any) -> bool:
    import array_api_compat

    return array_api_compat.is_numpy_namespace(xp)
