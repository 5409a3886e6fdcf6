"""One test tree; the backend is a fixture parameter.

``backend`` runs a test on NumPy, array-api-strict's ``device1`` (which refuses
host shortcuts exactly as a GPU does), array-api-strict's CPU device, PyTorch
CPU when installed, and CuPy / torch-CUDA when a CUDA device answers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import backends

try:
    import array_api_strict

    # Pin the standard's version so a new array-api-strict release cannot
    # silently change what the tests accept.
    array_api_strict.set_array_api_strict_flags(api_version="2024.12")
except ImportError:  # pragma: no cover - part of the test extra
    array_api_strict = None

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _cuda_reason() -> str | None:
    """None when CuPy sees a CUDA device, else why not (never raises)."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'bpnet-arrayapi[cuda]')"
    from backends.cupy_backend import cuda_device_count

    if cuda_device_count() == 0:
        return "no CUDA device answered (CuPy is installed, but no GPU or driver)"
    return None


CUDA_REASON = _cuda_reason()

BACKENDS = [
    pytest.param("cpu", id="numpy"),
    pytest.param("array-api-strict", id="strict-device1"),
    pytest.param("array-api-strict:CPU_DEVICE", id="strict-cpu"),
    pytest.param(
        "torch",
        id="torch-cpu",
        marks=pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed"),
    ),
    pytest.param("cuda", id="cupy-cuda", marks=pytest.mark.cuda),
    pytest.param("torch:cuda", id="torch-cuda", marks=pytest.mark.cuda),
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cuda" not in item.keywords:
            continue
        reason = CUDA_REASON
        if reason is None and "torch-cuda" in item.nodeid:
            if not HAVE_TORCH:
                reason = "PyTorch is not installed"
            else:
                import torch

                if not torch.cuda.is_available():
                    reason = "PyTorch sees no CUDA device"
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(params=BACKENDS)
def backend(request):
    """A ``backends.Backend`` for every array library and device present."""
    try:
        return backends.get_backend(request.param)
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def to_numpy(backend):
    return backend.to_numpy


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """The shared Fashion-MNIST IDX files, or a skip when they are absent."""
    path = (
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist"
    )
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST files not found in {path}")
    return path
