"""The harness every subcommand shares: the configurations, the data, the
initial weights (drawn exactly as bpnet draws them), the timers, the flags
for threads, rounds and JSON, the best-median-spread summary and the
Markdown table.

Every runner takes a config (``CONFIGS``), the data ``(X, y, X_test,
y_test)`` and the settings, and returns ``result(...)``: ``first_call_s``
(from building the model to the end of the warm-up epoch), ``epoch_s`` (one
entry per timed epoch), ``test_accuracy``, ``device``, ``loss_after_1`` (the
test-set loss of its weights after the warm-up epoch, by ``check_loss``: the
proof that it trained the same network on the same batches) and ``extra``. A
runner whose library is missing raises ``Unavailable``.
"""

from __future__ import annotations

import argparse
import gzip
import math
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import DEFAULT_DATA

CONFIGS: dict[str, dict[str, Any]] = {
    "A": {
        "data": "fashion",
        "sizes": (784, 128, 10),
        "activation": "relu",
        "batch_size": 256,
        "lr": 0.1,
        "method": "sgd",
        "label": "784-128-10 ReLU, batch 256, SGD lr 0.1 (Fashion-MNIST)",
    },
    "B": {
        "data": "fashion",
        "sizes": (784, 512, 512, 10),
        "activation": "relu",
        "batch_size": 128,
        "lr": 0.1,
        "method": "sgd",
        "label": "784-512-512-10 ReLU, batch 128, SGD lr 0.1 (Fashion-MNIST)",
    },
    "D": {
        "data": "fashion",
        "sizes": (784, 128, 10),
        "activation": "relu",
        "batch_size": 32,
        "lr": 0.1,
        "method": "sgd",
        "label": "784-128-10 ReLU, batch 32, SGD lr 0.1 (Fashion-MNIST)",
    },
    "E": {
        "data": "fashion",
        "conv": True,  # benchmarks.conv's network and peers
        "sizes": (784, 4320, 100, 10),
        "activation": "relu",
        "batch_size": 100,
        "lr": 0.1,
        "method": "sgd",
        "label": "SimpleConvNet: conv 30x5x5, ReLU, max-pool 2, 100, 10; batch 100, "
        "SGD lr 0.1 (Fashion-MNIST)",
    },
    "C": {
        "data": "digits",
        "sizes": (64, 25, 10),
        "activation": "sigmoid",
        "batch_size": None,
        "lr": None,
        "method": "cg",
        "l2": 1.0,
        "label": "64-25-10 sigmoid, full batch, scipy CG, l2 1.0 (8x8 digits)",
    },
}

SGD_PEERS = (
    "bpnet",
    "bpnet+eval",
    "jax-jit",
    "jax-scan",
    "torch-compile",
    "torch",
    "sklearn",
    "numpy",
    "gemm",
    "gemm-torch",
    "bpnet-torch",
    "torch-step",
    "bpnet-jax",
)
CG_PEERS = ("bpnet", "scipy-cg", "gemm")


def config(name: str) -> dict[str, Any]:
    """A named configuration, or a sweep point ``H<width>B<batch>``: one hidden
    ReLU layer of that width (784-width-10) at that batch size, SGD lr 0.1."""
    if name in CONFIGS:
        return CONFIGS[name]
    m = re.fullmatch(r"H(\d+)B(\d+)", name)
    if not m:
        raise KeyError(name)
    width, batch = int(m.group(1)), int(m.group(2))
    return {
        **CONFIGS["A"],
        "sizes": (784, width, 10),
        "batch_size": batch,
        "label": f"784-{width}-10 ReLU, batch {batch}, SGD lr 0.1 (Fashion-MNIST)",
    }


class Unavailable(RuntimeError):
    """The peer's library (or the bpnet API it needs) is missing here."""


# --- data --------------------------------------------------------------------
def _read_idx_gz(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_fashion(data_dir: str | Path) -> tuple[np.ndarray, ...]:
    """Fashion-MNIST as (X_train, y_train, X_test, y_test): float32 X in [0, 1]
    of shape (n, 784), int64 labels; and the name of the reader used."""
    try:
        from bpnet.data import load_mnist
    except ImportError:
        load_mnist = None
    if load_mnist is not None:
        ds = load_mnist(kind="fashion", data_dir=data_dir)
        import inspect

        reader = f"bpnet.data.load_mnist ({inspect.getfile(load_mnist)})"
        return ds.X_train, ds.y_train, ds.X_test, ds.y_test, reader
    d = Path(data_dir)
    out = []
    for split in ("train", "t10k"):
        images = _read_idx_gz(d / f"{split}-images-idx3-ubyte.gz", 16)
        labels = _read_idx_gz(d / f"{split}-labels-idx1-ubyte.gz", 8)
        X = images.reshape(len(labels), 784).astype(np.float32) / np.float32(255.0)
        out += [X, labels.astype(np.int64)]
    return (*out, "local IDX reader")


def load_digits_split() -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits, pixels / 16, stratified 80/20 split (seed 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(
        X, y.astype(np.int64), test_size=0.2, random_state=0, stratify=y
    )
    return Xtr, ytr, Xte, yte, "sklearn.datasets.load_digits"


# --- shared initial weights -----------------------------------------------
def initial_params(cfg: dict, seed: int = 0, rng=None) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...] (W of shape (in, out)) exactly as
    ``bpnet.Sequential(..., seed=seed)`` draws them: He normal before a ReLU
    and Glorot uniform for the output layer, zero biases; ex4's uniform
    +-0.12 Theta (bias column first) for the sigmoid network."""
    rng = np.random.default_rng(seed) if rng is None else rng
    sizes = cfg["sizes"]
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if cfg["activation"] == "sigmoid":
            theta = rng.uniform(-0.12, 0.12, size=(n_out, n_in + 1))
            params += [theta[:, 1:].T.copy(), theta[:, 0].copy()]
            continue
        if i < len(sizes) - 2:
            W = rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_in, n_out))
        else:
            a = math.sqrt(6.0 / (n_in + n_out))
            W = rng.uniform(-a, a, size=(n_in, n_out))
        params += [W, np.zeros(n_out)]
    return params


def batch_orders(cfg: dict, seed: int, n: int):
    """The permutation of each epoch, as bpnet's ``fit`` draws them: the same
    host generator that drew the initial weights, continued. Every SGD peer
    takes its batches in this order, so one epoch computes the same thing."""
    rng = np.random.default_rng(seed)
    initial_params(cfg, seed, rng)
    while True:
        yield rng.permutation(n).astype(np.int64)


def check_loss(params: list, X: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy of ReLU MLP weights [W1, b1, ...] on (X, y),
    in float64 on the host: the same yardstick for every peer's weights."""
    A = np.asarray(X, dtype=np.float64)
    Ws = [np.asarray(p, dtype=np.float64) for p in params]
    for i in range(0, len(Ws), 2):
        A = A @ Ws[i] + Ws[i + 1]
        if i < len(Ws) - 2:
            A = np.maximum(A, 0.0)
    A = A - A.max(axis=1, keepdims=True)
    lse = np.log(np.exp(A).sum(axis=1))
    return float(np.mean(lse - A[np.arange(A.shape[0]), y]))


#: CPU seconds (this process, all its threads) of each timed epoch of the
#: last run: on a busy machine they move less than wall time does
CPU_TIMES: list[float] = []


def timed_epochs(
    epoch, n_timed: int, sync=lambda: None, after_first=None
) -> tuple[float, list]:
    """Run the warm-up epoch and ``n_timed`` more; return (first, [timed]).
    ``after_first()`` runs untimed after the warm-up epoch (the loss check).
    The timed epochs' CPU seconds go to ``CPU_TIMES``."""
    times = []
    CPU_TIMES.clear()
    for i in range(1 + n_timed):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        epoch()
        sync()
        times.append(time.perf_counter() - t0)
        if i:
            CPU_TIMES.append(time.process_time() - c0)
        if i == 0 and after_first is not None:
            after_first()
    return times[0], times[1:]


def warm_and_time(
    epoch, s: dict, setup: float, check, sync=lambda: None
) -> tuple[float, list, float]:
    """``timed_epochs`` for a runner whose setup took ``setup`` seconds:
    (setup and the warm-up epoch, the ``s["epochs"]`` timed epochs, what
    ``check()`` gives after the warm-up epoch, untimed: ``loss_after_1``)."""
    checked = []
    first, times = timed_epochs(
        epoch, s["epochs"], sync, after_first=lambda: checked.append(check())
    )
    return setup + first, times, checked[0]


def result(first, times, acc, device="cpu", loss_after_1=None, **extra) -> dict:
    """The record every runner returns (see the module docstring)."""
    return {
        "first_call_s": first,
        "epoch_s": list(times),
        "test_accuracy": acc,
        "device": device,
        "loss_after_1": loss_after_1,
        "extra": extra,
    }


def timing_flags(
    p: argparse.ArgumentParser,
    *,
    threads: int | None = None,
    rounds: int | None = None,
    json: bool = False,
    data_dir: bool = False,
) -> None:
    """The flags the timing subcommands share, with their defaults:
    ``--threads``, ``--rounds``, ``--json`` and ``--data-dir``."""
    if threads is not None:
        p.add_argument("--threads", type=int, default=threads, help="BLAS threads")
    if rounds is not None:
        p.add_argument("--rounds", type=int, default=rounds, help="timed rounds")
    if data_dir:
        p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    if json:
        p.add_argument("--json", action="store_true", help="end with one JSON line")


def best_seconds(fn: Callable[[], object], reps: int) -> float:
    """The best wall time of ``reps`` calls of ``fn``, after one untimed call."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def summary(times: list[float], scale: float = 1.0, digits: int = 2) -> dict:
    """Best, median and spread (slowest over best) of repeated timings, the
    first two times ``scale`` (1e3 for milliseconds), rounded to ``digits``."""
    return {
        "best": round(min(times) * scale, digits),
        "median": round(statistics.median(times) * scale, digits),
        "spread": round(max(times) / min(times), digits),
    }


def table_head(*header: str) -> list[str]:
    """A Markdown table's header and rule lines."""
    return [table_row(*header), table_row(*("---" for _ in header))]


def table_row(*cells: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"
