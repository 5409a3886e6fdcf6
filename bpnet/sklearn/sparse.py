"""Sparse X: SciPy's CSR/CSC matrices and arrays on the host, and
``cupyx.scipy.sparse`` matrices on a GPU. The estimators slice rows from them
and densify one slice at a time; the whole matrix is never made dense.
"""

from __future__ import annotations

from typing import Any

from scipy import sparse

#: rows densified at a time when predicting from a sparse X
PREDICT_CHUNK = 2048


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
