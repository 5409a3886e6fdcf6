"""What the MLPClassifier test modules share: one BLAS thread, the digits split,
and the mark that quiets scikit-learn's ConvergenceWarning.
"""

from __future__ import annotations

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

quiet_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # Matrices here are tiny: one BLAS thread is faster and, on a shared
    # machine, far steadier than several contending for the cores.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module", name="digits")
def digits_fixture():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
