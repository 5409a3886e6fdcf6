"""One test tree; the backend is a fixture parameter.

``backend`` runs a test on NumPy, array-api-strict's ``device1`` (which refuses
host shortcuts exactly as a GPU does), array-api-strict's CPU device, PyTorch
CPU and JAX (its default device, 64-bit mode on) when installed, dpnp when a
SYCL device answers, and CuPy / torch-CUDA when a CUDA device answers.
"""

from __future__ import annotations

import importlib.util
import os
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
HAVE_JAX = importlib.util.find_spec("jax") is not None


def jax_x64() -> None:
    """Turn on JAX's 64-bit mode, so that the float64 tests run on JAX too
    (without it bpnet refuses float64 there, saying how to turn it on)."""
    import jax

    jax.config.update("jax_enable_x64", True)


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
    pytest.param(
        "jax",
        id="jax",
        marks=pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed"),
    ),
    # skips with the backend's one-line reason where dpnp or a SYCL device is absent
    pytest.param("dpnp", id="dpnp"),
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
    if request.param.startswith("jax"):
        jax_x64()
    try:
        return backends.get_backend(request.param)
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def to_numpy(backend):
    return backend.to_numpy


SHARED_FASHION = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist"
)


def fashion_places() -> list[Path]:
    """Where the tests look for Fashion-MNIST's four IDX files, in order: the
    project's shared folder, then the folder bpnet downloads them to
    (``$BPNET_DATA_DIR/fashion`` when that is set) and ``~/.cache/bpnet/fashion``.
    """
    from bpnet.data import default_cache_dir

    places = [SHARED_FASHION, default_cache_dir("fashion")]
    places.append(Path.home() / ".cache" / "bpnet" / "fashion")
    return list(dict.fromkeys(places))


def find_fashion() -> tuple[Path | None, str]:
    """(the first folder holding all four files, or None; why none did)."""
    from bpnet.data import IDX_FILES

    places = fashion_places()
    for place in places:
        if all((place / name).is_file() for name in IDX_FILES.values()):
            return place, ""
    env = "" if os.environ.get("BPNET_DATA_DIR") else " ($BPNET_DATA_DIR is not set)"
    looked = ", ".join(str(p) for p in places)
    return None, f"Fashion-MNIST's four IDX .gz files are in none of: {looked}{env}"


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """A folder with the Fashion-MNIST IDX files, or a skip naming where it looked."""
    path, why = find_fashion()
    if path is None:
        pytest.skip(why)
    return path
