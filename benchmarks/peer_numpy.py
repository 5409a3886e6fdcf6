"""The hand-written NumPy peer (``numpy``): a ReLU MLP trained by minibatch
SGD as the DNNClassifier notebook does it, vectorized. Its row is the
reference the other peers' loss after one epoch is checked against; it also
runs its first epoch again, untimed, in float64 and from nudged starts, to
measure how far rounding alone moves that loss.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import (
    batch_orders,
    check_loss,
    initial_params,
    result,
    warm_and_time,
)


def numpy_sgd_epoch(params, X, y, order, batch_size, lr):
    """One epoch of minibatch SGD on a ReLU MLP with softmax cross-entropy.

    ``params`` is [W1, b1, W2, b2, ...] (float32), updated in place.
    """
    Ws, bs = params[0::2], params[1::2]
    last = len(Ws) - 1
    for lo in range(0, X.shape[0], batch_size):
        idx = order[lo : lo + batch_size]
        A, labels = X[idx], y[idx]
        m = A.shape[0]
        # forward: keep every layer's input and pre-activation for backward
        inputs, zs = [], []
        for i, (W, b) in enumerate(zip(Ws, bs)):
            inputs.append(A)
            Z = A @ W + b
            zs.append(Z)
            A = np.maximum(Z, 0) if i < last else Z
        # softmax cross-entropy: dL/dZ = (softmax(Z) - onehot(y)) / m
        Z = zs[-1] - zs[-1].max(axis=1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(m), labels] -= 1
        dZ = P / m
        # backward and update, last layer first
        for i in range(last, -1, -1):
            dW = inputs[i].T @ dZ
            db = dZ.sum(axis=0)
            if i > 0:
                dZ = (dZ @ Ws[i].T) * (zs[i - 1] > 0)
            Ws[i] -= lr * dW
            bs[i] -= lr * db


def numpy_predict(params, X):
    A = X
    Ws, bs = params[0::2], params[1::2]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        A = A @ W + b
        if i < len(Ws) - 1:
            A = np.maximum(A, 0)
    return A.argmax(axis=1)


def run_numpy(cfg, data, s):
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    params = [p.astype(np.float32) for p in initial_params(cfg, s["seed"])]
    orders = batch_orders(cfg, s["seed"], X.shape[0])

    def epoch():
        numpy_sgd_epoch(params, X, y, next(orders), cfg["batch_size"], cfg["lr"])

    first, times, loss_after_1 = warm_and_time(
        epoch,
        s,
        time.perf_counter() - t0,
        lambda: check_loss(params, Xte, yte),
    )
    acc = float(np.mean(numpy_predict(params, Xte) == yte))
    return result(
        first,
        times,
        acc,
        loss_after_1=loss_after_1,
        loss_after_1_float64=float64_loss_after_1(cfg, X, y, Xte, yte, s["seed"]),
        loss_after_1_nudged=nudged_losses_after_1(cfg, X, y, Xte, yte, s["seed"]),
    )


def float64_loss_after_1(cfg, X, y, Xte, yte, seed) -> float:
    """The NumPy loop's first epoch again in float64 (untimed): how far float32
    rounding alone moves the loss after one epoch, the yardstick for how
    closely float32 peers can agree. Each batch is promoted after its gather,
    so X is not copied."""
    params = initial_params(cfg, seed)
    order = next(batch_orders(cfg, seed, X.shape[0]))
    numpy_sgd_epoch(params, X, y, order, cfg["batch_size"], cfg["lr"])
    return check_loss(params, Xte, yte)


#: One-ulp moves of every initial weight (up, down, two up) for the float32
#: runs that measure how far rounding alone spreads the loss after one epoch.
NUDGES = (1, -1, 2)


def nudged_losses_after_1(cfg, X, y, Xte, yte, seed) -> list[float]:
    """The NumPy loop's first epoch in float32 again (untimed) from initial
    weights each moved by a few ulps (``NUDGES``): how far two float32 runs
    that differ only by rounding end up apart. On a chaotic configuration
    (B: lr 0.1, 469 steps) that is percents; on A, 1e-7."""
    out = []
    order = next(batch_orders(cfg, seed, X.shape[0]))
    for k in NUDGES:
        params = []
        for p in initial_params(cfg, seed):
            q = p.astype(np.float32)
            for _ in range(abs(k)):
                q = np.nextafter(q, np.float32(np.inf if k > 0 else -np.inf))
            params.append(q)
        numpy_sgd_epoch(params, X, y, order, cfg["batch_size"], cfg["lr"])
        out.append(check_loss(params, Xte, yte))
    return out
