"""The GEMM bound (``gemm``, ``gemm-torch``): only the matrix products one
epoch of training needs, on preallocated random matrices, with the same
library on the same device; ``x GEMM`` in the report divides by it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.harness import Unavailable, result, timed_epochs
from benchmarks.peer_torch import torch_on


def gemm_products(sizes, batch: int) -> list[tuple[tuple, bool, tuple, bool]]:
    """The matrix products one training step of ``batch`` rows needs, as
    (left shape, left transposed, right shape, right transposed) with the
    shapes as stored: X @ W for each layer, A.T @ dZ for each layer, and
    dZ @ W.T for all but the first layer."""
    products = []
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        products.append(((batch, n_in), False, (n_in, n_out), False))
        products.append(((batch, n_in), True, (batch, n_out), False))
        if layer > 0:
            products.append(((batch, n_out), False, (n_in, n_out), True))
    return products


def _gemm_library(device: str) -> tuple[Any, Any, str, Any]:
    """(make array from host, synchronize, name, matmul) for ``device``."""
    if device == "cpu":
        return np.ascontiguousarray, lambda: None, "numpy", np.matmul
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            sync = cupy.cuda.Device(0).synchronize
            return cupy.asarray, sync, "cupy", cupy.matmul
    except Exception:  # CuPy missing, or no driver: try PyTorch
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return (
                lambda a: torch.from_numpy(a).to("cuda"),
                torch.cuda.synchronize,
                "torch",
                torch.matmul,
            )
    except ImportError:
        pass
    raise Unavailable("neither CuPy nor PyTorch sees a CUDA device")


def run_gemm(cfg, data, s):
    return _time_products(cfg, data, s, *_gemm_library(s["device"]))


def run_gemm_torch(cfg, data, s):
    """The same products through PyTorch's own matmul (its BLAS, or cuBLAS)
    on the same device: the floor under PyTorch's training loop."""
    torch, dev, sync = torch_on(s)
    return _time_products(
        cfg,
        data,
        s,
        lambda a: torch.from_numpy(a).to(dev),
        sync,
        "torch",
        torch.matmul,
    )


def _time_products(cfg, data, s, make, sync, lib, matmul):
    n = data[0].shape[0]
    full_batch = cfg["method"] == "cg"
    dtype = np.float64 if full_batch else np.float32
    if full_batch:  # one evaluation; the ratios multiply by each row's nfev
        batches = [n]
    else:
        bs = cfg["batch_size"]
        batches = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    ops: dict[int, list] = {}
    flops = 0
    for b in batches:
        if b not in ops:
            ops[b] = []
            for a_shape, a_t, b_shape, b_t in gemm_products(cfg["sizes"], b):
                L = make(rng.standard_normal(a_shape).astype(dtype))
                R = make(rng.standard_normal(b_shape).astype(dtype))
                L, R = (L.T if a_t else L), (R.T if b_t else R)
                out = make(np.zeros((L.shape[0], R.shape[1]), dtype=dtype))
                ops[b].append((L, R, out))
        flops += sum(2 * L.shape[0] * L.shape[1] * R.shape[1] for L, R, _ in ops[b])

    def epoch():
        for b in batches:
            for L, R, out in ops[b]:
                matmul(L, R, out=out)

    sync()
    setup = time.perf_counter() - t0
    # full-batch products are short: time more repetitions of them
    first, times = timed_epochs(epoch, s["epochs"] * (20 if full_batch else 1), sync)
    extra = {"library": lib, "gflop_per_epoch": flops / 1e9}
    if full_batch:  # one "epoch" per 20 evaluations: their median
        times = [float(np.median(times[i : i + 20])) for i in range(0, len(times), 20)]
        extra["seconds_per_eval"] = float(np.median(times))
    return result(setup + first, times, None, device=s["device"], **extra)
