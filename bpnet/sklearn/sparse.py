"""Sparse X: SciPy's CSR/CSC matrices and arrays on the host, and
``cupyx.scipy.sparse`` matrices on a GPU. The estimators slice rows from them
and densify one slice at a time; the whole matrix is never made dense.
"""

from __future__ import annotations

from typing import Any

from scipy import sparse

#: entries densified at a time when predicting or evaluating on a sparse X
#: (4M: 16 MB of float32), whatever its width
CHUNK_ELEMENTS = 2**22


def chunk_rows(n_features: int) -> int:
    """Rows per slice of a sparse X of this width (at least one)."""
    return max(1, CHUNK_ELEMENTS // max(1, n_features))


def is_device_sparse(X: Any) -> bool:
    """A ``cupyx.scipy.sparse`` matrix (checked by name: no CuPy import)."""
    return type(X).__module__.startswith("cupyx.scipy.sparse")


def is_sparse(X: Any) -> bool:
    return sparse.issparse(X) or is_device_sparse(X)


def dense_rows(X: Any, rows: Any) -> Any:
    """Rows of a sparse X as a dense array (host for SciPy, device for CuPy):
    only this slice is ever densified.
    """
    if isinstance(rows, slice):
        return X[rows].toarray()
    return X[rows, :].toarray()
