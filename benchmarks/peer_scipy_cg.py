"""The full-batch peer (``scipy-cg``): ex4's cost function and gradient
(nnCostFunction), vectorized in NumPy, minimized by scipy's CG from the shared
initial weights.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import Unavailable, initial_params, result


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _thetas(theta, sizes):
    (n0, n1, n2), k = sizes, sizes[1] * (sizes[0] + 1)
    return theta[:k].reshape(n1, n0 + 1), theta[k:].reshape(n2, n1 + 1)


def ex4_cost_grad(theta, sizes, X, Y, lam):
    """ex4's nnCostFunction, vectorized: J and the unrolled gradient."""
    T1, T2 = _thetas(theta, sizes)
    m = X.shape[0]
    A1 = np.hstack([np.ones((m, 1)), X])
    Z2 = A1 @ T1.T
    A2 = np.hstack([np.ones((m, 1)), _sigmoid(Z2)])
    Z3 = A2 @ T2.T
    # -[y log h + (1 - y) log(1 - h)], written stably on the logits
    J = np.sum(Y * _softplus(-Z3) + (1 - Y) * _softplus(Z3)) / m
    J += lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2))
    d3 = _sigmoid(Z3) - Y
    g2 = A2[:, 1:]
    d2 = (d3 @ T2[:, 1:]) * g2 * (1 - g2)
    G1, G2 = d2.T @ A1 / m, d3.T @ A2 / m
    G1[:, 1:] += lam / m * T1[:, 1:]
    G2[:, 1:] += lam / m * T2[:, 1:]
    return J, np.concatenate([G1.ravel(), G2.ravel()])


def ex4_predict(theta, sizes, X):
    T1, T2 = _thetas(theta, sizes)
    ones = np.ones((X.shape[0], 1))
    A2 = _sigmoid(np.hstack([ones, X]) @ T1.T)
    return (np.hstack([ones, A2]) @ T2.T).argmax(axis=1)


def run_scipy_cg(cfg, data, s):
    try:
        from scipy import optimize
    except ImportError as exc:
        raise Unavailable("SciPy is not installed") from exc
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    init = initial_params(cfg, s["seed"])
    # ex4's unrolled Theta1, Theta2 (bias column first): the same numbers
    theta0 = np.concatenate(
        [np.column_stack([b, W.T]).ravel() for W, b in zip(init[0::2], init[1::2])]
    )
    args = (cfg["sizes"], X, np.eye(cfg["sizes"][-1])[y], cfg["l2"])
    setup = time.perf_counter() - t0
    runs = []
    for _ in range(1 + s["epochs"]):
        t = time.perf_counter()
        res = optimize.minimize(
            ex4_cost_grad,
            theta0,
            args=args,
            jac=True,
            method="CG",
            options={"maxiter": s["maxiter"]},
        )
        runs.append(time.perf_counter() - t)
    acc = float(np.mean(ex4_predict(res.x, cfg["sizes"], Xte) == yte))
    return result(
        setup + runs[0],
        runs[1:],
        acc,
        nfev=int(res.nfev),
        nit=int(res.nit),
        loss=float(res.fun),
    )
